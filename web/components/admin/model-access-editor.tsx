"use client";

import { type FormEvent, type ReactNode, useId, useState } from "react";
import { api } from "@/lib/api";
import { fmtInt } from "@/lib/charts";
import { subjectText } from "@/lib/models";
import type { ModelLimit, ModelRule, ModelSubjectBody, Role } from "@/lib/types";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { hiddenHeader, Table } from "../table";
import { useActions } from "../use-form-action";

/** The subject of a new rule or limit from its form: a role, or one user by email. */
function subjectFrom(form: FormData, model: string): ModelSubjectBody {
  const who = String(form.get("who"));
  if (who === "email") return { model, email: String(form.get("email") ?? "").trim() };
  return { model, role: who.replace(/^role:/, "") as Role };
}

/**
 * Who may use one model, and its daily token limits: the rules and limits set, each with a
 * Remove button, and forms to add a rule or set a limit (both replace what the role or user
 * had for this model). `onChanged` reloads them after a change.
 */
export function ModelAccessEditor({
  model,
  rules,
  limits,
  onChanged,
}: {
  model: string;
  rules: ModelRule[];
  limits: ModelLimit[];
  onChanged: () => Promise<void>;
}) {
  const actions = useActions();
  const change = (task: () => Promise<unknown>, ok: string) =>
    actions.run(async () => {
      await task();
      await onChanged();
      return { ok };
    });
  const addRule = actions.onSubmit(async (form) => {
    const body = { ...subjectFrom(form, model), allow: form.get("allow") === "allow" };
    const rule = await api.adminSetModelRule(body);
    await onChanged();
    return { ok: `${model}: ${rule.allow ? "allowed" : "denied"} to ${subjectText(rule)}.` };
  });
  const setLimit = actions.onSubmit(async (form) => {
    const body = { ...subjectFrom(form, model), tokens_per_day: Number(form.get("tokens")) };
    const limit = await api.adminSetModelLimit(body);
    await onChanged();
    return {
      ok: `${model}: ${fmtInt(limit.tokens_per_day)} tokens a day for ${subjectText(limit)}.`,
    };
  });

  return (
    <div className="stack">
      <h3>Access and daily limits</h3>
      {rules.length > 0 ? (
        <Table
          caption={`Access rules of ${model}`}
          columns={["For", "Access", hiddenHeader("Remove")]}
        >
          {rules.map((r) => (
            <EntryRow
              key={r.id}
              who={subjectText(r)}
              value={r.allow ? "allowed" : "denied"}
              what={`the rule for ${subjectText(r)} on ${model}`}
              disabled={actions.pending}
              onRemove={() =>
                change(() => api.adminDeleteModelRule(r.id), `Rule for ${subjectText(r)} removed.`)
              }
            />
          ))}
        </Table>
      ) : (
        <p className="muted">No rule: everyone may use {model}.</p>
      )}
      {limits.length > 0 ? (
        <Table
          caption={`Daily token limits of ${model}`}
          columns={["For", "Tokens per day", hiddenHeader("Remove")]}
        >
          {limits.map((l) => (
            <EntryRow
              key={l.id}
              who={subjectText(l)}
              value={l.tokens_per_day === 0 ? "no limit" : fmtInt(l.tokens_per_day)}
              what={`the limit for ${subjectText(l)} on ${model}`}
              disabled={actions.pending}
              onRemove={() =>
                change(
                  () => api.adminDeleteModelLimit(l.id),
                  `Limit for ${subjectText(l)} removed.`,
                )
              }
            />
          ))}
        </Table>
      ) : null}
      <EntryForm
        label={`Add an access rule for ${model}`}
        onSubmit={addRule}
        pending={actions.pending}
        button="Save rule"
      >
        <AccessField />
      </EntryForm>
      <EntryForm
        label={`Set a daily limit for ${model}`}
        onSubmit={setLimit}
        pending={actions.pending}
        button="Save limit"
      >
        <TokensField />
      </EntryForm>
      <SectionStatus error={actions.outcome.error} ok={actions.outcome.ok} />
    </div>
  );
}

/** One rule or limit: whom it is for, its value, and a Remove button. */
function EntryRow(props: {
  who: string;
  value: string;
  what: string;
  disabled: boolean;
  onRemove: () => void;
}) {
  return (
    <tr>
      <td>{props.who}</td>
      <td>{props.value}</td>
      <td>
        <button
          type="button"
          className="btn btn-small"
          aria-label={`Remove ${props.what}`}
          disabled={props.disabled}
          onClick={props.onRemove}
        >
          Remove
        </button>
      </td>
    </tr>
  );
}

/** A form for a new rule or limit: whom it is for, then its value (`children`). */
function EntryForm(props: {
  label: string;
  onSubmit: (e: FormEvent<HTMLFormElement>) => void;
  pending: boolean;
  button: string;
  children: ReactNode;
}) {
  return (
    <form className="inline-form" aria-label={props.label} onSubmit={props.onSubmit}>
      <SubjectFields />
      {props.children}
      <button type="submit" className="btn" disabled={props.pending}>
        {props.button}
      </button>
    </form>
  );
}

/** "For": every user, every admin, or one user by email (then an email field). */
function SubjectFields() {
  const id = useId();
  const [who, setWho] = useState("role:user");
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-who`}>For</label>
        <select id={`${id}-who`} name="who" value={who} onChange={(e) => setWho(e.target.value)}>
          <option value="role:user">every user (role user)</option>
          <option value="role:admin">every admin (role admin)</option>
          <option value="email">one user, by email</option>
        </select>
      </div>
      {who === "email" ? (
        <Field
          id={`${id}-email`}
          label="Email"
          name="email"
          type="email"
          required
          maxLength={320}
        />
      ) : null}
    </>
  );
}

function AccessField() {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={`${id}-allow`}>Access</label>
      <select id={`${id}-allow`} name="allow" defaultValue="deny">
        <option value="allow">allow</option>
        <option value="deny">deny</option>
      </select>
    </div>
  );
}

function TokensField() {
  const id = useId();
  return (
    <Field
      id={`${id}-tokens`}
      label="Tokens per day"
      name="tokens"
      type="number"
      min={0}
      step={1}
      inputMode="numeric"
      required
      hint="0 = no limit of this model"
    />
  );
}

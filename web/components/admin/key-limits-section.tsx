"use client";

import { useCallback, useState } from "react";
import { api } from "@/lib/api";
import type { AdminApiKey, KeyLimits } from "@/lib/types";
import { SectionStatus } from "../section-status";
import { hiddenHeader, Table } from "../table";
import { useActions } from "../use-form-action";
import { useResource } from "../use-resource";

const FIELDS: { key: keyof KeyLimits; label: string }[] = [
  { key: "requestsPerMinute", label: "Requests per minute" },
  { key: "tokensPerDay", label: "Tokens per day" },
  { key: "concurrentStreams", label: "Concurrent requests" },
  { key: "maxTokens", label: "Max tokens per request" },
];

type Draft = Record<keyof KeyLimits, string>;

const toDraft = (l: KeyLimits): Draft => ({
  requestsPerMinute: l.requestsPerMinute?.toString() ?? "",
  tokensPerDay: l.tokensPerDay?.toString() ?? "",
  concurrentStreams: l.concurrentStreams?.toString() ?? "",
  maxTokens: l.maxTokens?.toString() ?? "",
});

/** Blank = none of the key's own (its user's limits still apply); the gateway checks the rest. */
const fromDraft = (d: Draft): KeyLimits => {
  const n = (v: string) => (v.trim() === "" ? null : Number(v));
  return {
    requestsPerMinute: n(d.requestsPerMinute),
    tokensPerDay: n(d.tokensPerDay),
    concurrentStreams: n(d.concurrentStreams),
    maxTokens: n(d.maxTokens),
  };
};

const loadUsers = () => api.adminUsers();

/** Admins set an API key's own limits, checked on top of its owner's. */
export function KeyLimitsSection() {
  const users = useResource(loadUsers);
  const [userId, setUserId] = useState("");
  const actions = useActions();
  const save = (k: AdminApiKey, limits: KeyLimits, saved: (l: KeyLimits) => void) =>
    actions.run(async () => {
      saved((await api.adminSetKeyLimits(k.id, limits)).overrides);
      return { ok: `Saved the limits of key ${k.name ?? k.start ?? k.id}.` };
    });

  return (
    <section className="panel" aria-labelledby="key-limits-h">
      <h2 id="key-limits-h">API key limits</h2>
      <p className="muted">
        A key's own limits apply on top of its owner's; blank = none of its own, 0 = no limit.
      </p>
      <div className="field">
        <label htmlFor="key-limits-user">Owner</label>
        <select id="key-limits-user" value={userId} onChange={(e) => setUserId(e.target.value)}>
          <option value="">Choose a user…</option>
          {(users.data ?? []).map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
            </option>
          ))}
        </select>
      </div>
      <SectionStatus error={actions.outcome.error ?? users.error} ok={actions.outcome.ok} />
      {/* A new owner is a new table: nothing of the previous one's keys stays on screen. */}
      {userId ? <KeysTable key={userId} userId={userId} onSave={save} /> : null}
    </section>
  );
}

type Save = (k: AdminApiKey, limits: KeyLimits, saved: (l: KeyLimits) => void) => void;

/** The user's API keys, one row each with its own limits to edit and save. */
function KeysTable({ userId, onSave }: { userId: string; onSave: Save }) {
  const load = useCallback(() => api.adminUserApiKeys(userId), [userId]);
  const keys = useResource(load);
  if (keys.error) return <SectionStatus error={keys.error} />;
  if (keys.data === null) return <p className="muted">Loading…</p>;
  if (keys.data.length === 0) return <p className="muted">This user has no API keys.</p>;
  return (
    <Table
      caption="API keys and their own limits"
      columns={["Key", ...FIELDS.map((f) => f.label), hiddenHeader("Save")]}
    >
      {keys.data.map((k) => (
        <KeyRow key={k.id} apiKey={k} onSave={onSave} />
      ))}
    </Table>
  );
}

function KeyRow({ apiKey: k, onSave }: { apiKey: AdminApiKey; onSave: Save }) {
  const [draft, setDraft] = useState(() => toDraft(k.limits));
  const name = k.name ?? k.start ?? k.id;
  return (
    <tr>
      <td>{name}</td>
      {FIELDS.map((f) => (
        <td key={f.key}>
          <input
            type="number"
            min={0}
            step={1}
            inputMode="numeric"
            aria-label={`${f.label} for key ${name}`}
            value={draft[f.key]}
            onChange={(e) => setDraft({ ...draft, [f.key]: e.target.value })}
          />
        </td>
      ))}
      <td>
        <button
          type="button"
          onClick={() => onSave(k, fromDraft(draft), (saved) => setDraft(toDraft(saved)))}
        >
          Save <span className="visually-hidden">limits of key {name}</span>
        </button>
      </td>
    </tr>
  );
}

"use client";

import { useState } from "react";
import { api } from "@/lib/api";
import type { ApiKey, CreatedApiKey } from "@/lib/types";
import { CopyButton } from "../copy-button";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { hiddenHeader, Table } from "../table";
import { useActions } from "../use-form-action";
import { useResource } from "../use-resource";

const date = (s: string | null) => (s ? new Date(s).toLocaleString() : "—");

export function ApiKeysSection() {
  const keys = useResource(api.apiKeys);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const actions = useActions();
  const create = actions.onSubmit(async (form, element) => {
    const days = Number(form.get("days"));
    const name = String(form.get("name")).trim();
    setCreated(await api.createApiKey(name, days > 0 ? days : undefined));
    element.reset();
    await keys.reload();
    return {};
  });
  const revoke = (k: ApiKey) => {
    const name = k.name ?? k.start ?? k.id;
    if (!window.confirm(`Revoke the key “${name}”? Programs using it stop working.`)) return;
    actions.run(async () => {
      await api.revokeApiKey(k.id);
      if (created?.id === k.id) setCreated(null);
      await keys.reload();
      return {};
    });
  };

  return (
    <section className="panel" aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      <p className="muted small">
        Use a key as <code>Authorization: Bearer &lt;key&gt;</code> with the OpenAI-compatible API
        at <code>/v1/chat/completions</code>.
      </p>
      <form className="inline-form" onSubmit={create}>
        <Field
          id="key-name"
          label="Key name"
          name="name"
          required
          maxLength={64}
          placeholder="my script"
        />
        <Field
          id="key-days"
          label="Expires after (days, empty = never)"
          name="days"
          type="number"
          min={1}
          max={3650}
        />
        <button type="submit" className="btn btn-primary" disabled={actions.pending}>
          Create key
        </button>
      </form>
      {created ? <NewKey created={created} onDone={() => setCreated(null)} /> : null}
      <SectionStatus error={actions.outcome.error ?? keys.error} />
      {keys.data === null ? (
        keys.error ? null : (
          <p className="muted">Loading…</p>
        )
      ) : keys.data.length === 0 ? (
        <p className="muted">No API keys yet.</p>
      ) : (
        <KeysTable keys={keys.data} onRevoke={revoke} />
      )}
    </section>
  );
}

/** The key just created, shown once. */
function NewKey({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  return (
    <div className="alert alert-ok new-key" role="status">
      <p>
        <strong>Copy your new key now — it will not be shown again.</strong>
      </p>
      <div className="inline">
        <label htmlFor="new-key" className="visually-hidden">
          New API key
        </label>
        <input id="new-key" value={created.key} readOnly data-testid="new-api-key" />
        <CopyButton text={created.key} label="Copy key" />
        <button type="button" className="btn btn-small btn-ghost" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

function KeysTable({ keys, onRevoke }: { keys: ApiKey[]; onRevoke: (k: ApiKey) => void }) {
  return (
    <Table
      caption="Your API keys"
      columns={["Name", "Starts with", "Created", "Expires", "Last used", hiddenHeader("Actions")]}
    >
      {keys.map((k) => (
        <tr key={k.id}>
          <td>{k.name ?? "—"}</td>
          <td>
            <code>{k.start ? `${k.start}…` : "—"}</code>
          </td>
          <td>{date(k.createdAt)}</td>
          <td>{date(k.expiresAt)}</td>
          <td>{date(k.lastUsedAt)}</td>
          <td>
            <button
              type="button"
              className="btn btn-small btn-danger"
              aria-label={`Revoke ${k.name ?? k.start ?? "key"}`}
              onClick={() => onRevoke(k)}
            >
              Revoke
            </button>
          </td>
        </tr>
      ))}
    </Table>
  );
}

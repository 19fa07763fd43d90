"use client";

import { type FormEvent, useCallback, useEffect, useState } from "react";
import { api } from "@/lib/api";
import type { ApiKey, CreatedApiKey } from "@/lib/types";
import { CopyButton } from "../copy-button";
import { errorText, SectionStatus } from "../section-status";

const date = (s: string | null) => (s ? new Date(s).toLocaleString() : "—");

export function ApiKeysSection() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      setKeys(await api.apiKeys());
    } catch (err) {
      setError(errorText(err));
    }
  }, []);
  useEffect(() => void reload(), [reload]);

  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    setError(null);
    const days = Number(form.get("days"));
    try {
      setCreated(
        await api.createApiKey(String(form.get("name")).trim(), days > 0 ? days : undefined),
      );
      formEl.reset();
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function revoke(k: ApiKey) {
    if (
      !window.confirm(
        `Revoke the key “${k.name ?? k.start ?? k.id}”? Programs using it stop working.`,
      )
    )
      return;
    setError(null);
    try {
      await api.revokeApiKey(k.id);
      if (created?.id === k.id) setCreated(null);
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section className="panel" aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      <p className="muted small">
        Use a key as <code>Authorization: Bearer &lt;key&gt;</code> with the OpenAI-compatible API
        at <code>/v1/chat/completions</code>.
      </p>
      <form className="inline-form" onSubmit={create}>
        <div className="field">
          <label htmlFor="key-name">Key name</label>
          <input id="key-name" name="name" required maxLength={64} placeholder="my script" />
        </div>
        <div className="field">
          <label htmlFor="key-days">Expires after (days, empty = never)</label>
          <input id="key-days" name="days" type="number" min={1} max={3650} />
        </div>
        <button type="submit" className="btn btn-primary">
          Create key
        </button>
      </form>
      {created ? (
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
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() => setCreated(null)}
            >
              Done
            </button>
          </div>
        </div>
      ) : null}
      <SectionStatus error={error} />
      {keys === null ? (
        <p className="muted">Loading…</p>
      ) : keys.length === 0 ? (
        <p className="muted">No API keys yet.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Your API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Starts with</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
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
                      onClick={() => void revoke(k)}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

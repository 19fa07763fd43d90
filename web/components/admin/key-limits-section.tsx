"use client";

import { useEffect, useState } from "react";
import { api } from "@/lib/api";
import type { AdminApiKey, AdminUser, KeyLimits } from "@/lib/types";
import { errorText, SectionStatus } from "../section-status";

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

/** Admins set an API key's own limits, checked on top of its owner's. */
export function KeyLimitsSection() {
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [userId, setUserId] = useState("");
  const [keys, setKeys] = useState<AdminApiKey[] | null>(null);
  const [drafts, setDrafts] = useState<Record<string, Draft>>({});
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);

  useEffect(() => {
    api.adminUsers().then(setUsers, (err) => setError(errorText(err)));
  }, []);
  useEffect(() => {
    if (!userId) return;
    setKeys(null);
    api.adminUserApiKeys(userId).then(
      (list) => {
        setKeys(list);
        setDrafts(Object.fromEntries(list.map((k) => [k.id, toDraft(k.limits)])));
      },
      (err) => setError(errorText(err)),
    );
  }, [userId]);

  async function save(k: AdminApiKey) {
    setError(null);
    setOk(null);
    const draft = drafts[k.id];
    if (!draft) return;
    try {
      const saved = await api.adminSetKeyLimits(k.id, fromDraft(draft));
      setDrafts((d) => ({ ...d, [k.id]: toDraft(saved.overrides) }));
      setOk(`Saved the limits of key ${k.name ?? k.start ?? k.id}.`);
    } catch (err) {
      setError(errorText(err));
    }
  }

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
          {users.map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
            </option>
          ))}
        </select>
      </div>
      <SectionStatus error={error} ok={ok} />
      {!userId ? null : keys === null ? (
        <p className="muted">Loading…</p>
      ) : keys.length === 0 ? (
        <p className="muted">This user has no API keys.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">API keys and their own limits</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                {FIELDS.map((f) => (
                  <th key={f.key} scope="col">
                    {f.label}
                  </th>
                ))}
                <th scope="col">
                  <span className="visually-hidden">Save</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => {
                const name = k.name ?? k.start ?? k.id;
                const draft = drafts[k.id] ?? toDraft(k.limits);
                return (
                  <tr key={k.id}>
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
                          onChange={(e) =>
                            setDrafts((d) => ({
                              ...d,
                              [k.id]: { ...draft, [f.key]: e.target.value },
                            }))
                          }
                        />
                      </td>
                    ))}
                    <td>
                      <button type="button" onClick={() => void save(k)}>
                        Save <span className="visually-hidden">limits of key {name}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

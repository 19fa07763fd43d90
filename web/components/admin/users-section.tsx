"use client";

import Link from "next/link";
import { useCallback, useEffect, useState } from "react";
import { ApiError, api } from "@/lib/api";
import type { AdminUser, Role } from "@/lib/types";
import { errorText, SectionStatus } from "../section-status";
import { useSession } from "../shell/session";
import { LinkToHandOver } from "./link-to-hand-over";

export function UsersSection() {
  const { user: me } = useSession();
  const [q, setQ] = useState("");
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [needs2fa, setNeeds2fa] = useState(false);
  const [ok, setOk] = useState<string | null>(null);
  const [resetLink, setResetLink] = useState<{ email: string; url: string } | null>(null);

  const reload = useCallback(async (query: string) => {
    try {
      setUsers(await api.adminUsers(query.trim() || undefined));
      setError(null);
    } catch (err) {
      // REQUIRE_ADMIN_2FA on the gateway: admins must turn on two-factor first.
      if (err instanceof ApiError && err.code === "TWO_FACTOR_REQUIRED") setNeeds2fa(true);
      else setError(errorText(err));
    }
  }, []);
  useEffect(() => {
    const t = setTimeout(() => void reload(q), q ? 250 : 0);
    return () => clearTimeout(t);
  }, [q, reload]);

  async function update(u: AdminUser, patch: { role?: Role; disabled?: boolean }) {
    setError(null);
    setOk(null);
    // Optimistic: the control reflects the choice at once; a failure reloads the list.
    setUsers((list) => (list ? list.map((x) => (x.id === u.id ? { ...x, ...patch } : x)) : list));
    try {
      const updated = await api.adminUpdateUser(u.id, patch);
      const what = [
        patch.role !== undefined ? `role ${patch.role}` : "",
        patch.disabled !== undefined ? (patch.disabled ? "disabled" : "enabled") : "",
      ].filter(Boolean);
      setOk(`Saved: ${u.email} ${what.join(", ")}.`);
      setUsers((list) =>
        list ? list.map((x) => (x.id === u.id ? { ...x, ...patch, ...(updated ?? {}) } : x)) : list,
      );
    } catch (err) {
      setError(errorText(err));
      await reload(q);
    }
  }

  async function approve(u: AdminUser) {
    setError(null);
    setOk(null);
    try {
      await api.adminApprove(u.id);
      setOk(`${u.email} is approved.`);
      await reload(q);
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function makeResetLink(u: AdminUser) {
    setError(null);
    setOk(null);
    try {
      const { link } = await api.adminResetLink(u.id);
      setResetLink({ email: u.email, url: link });
      setOk(`Password-reset link for ${u.email} (valid one hour, once): hand it over.`);
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section className="panel" aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <div className="field">
        <label htmlFor="user-search">Search users</label>
        <input
          id="user-search"
          type="search"
          value={q}
          placeholder="email or name"
          onChange={(e) => setQ(e.target.value)}
        />
      </div>
      <SectionStatus error={error} ok={ok} />
      {resetLink && (
        <LinkToHandOver
          id="reset-link"
          label={`Reset link for ${resetLink.email}`}
          url={resetLink.url}
        />
      )}
      {needs2fa ? (
        <p role="alert" className="alert alert-error">
          Administration requires two-factor authentication.{" "}
          <Link href="/account">Enable it in your account</Link>, then come back.
        </p>
      ) : users === null ? (
        <p className="muted">Loading…</p>
      ) : users.length === 0 ? (
        <p className="muted">No users match.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Users</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Disabled</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => {
                const self = u.id === me.id;
                return (
                  <tr key={u.id}>
                    <td>{u.name}</td>
                    <td>
                      {u.email} {u.pending && <span className="badge badge-bad">pending</span>}
                    </td>
                    <td>
                      <select
                        aria-label={`Role of ${u.email}`}
                        value={u.role}
                        disabled={self}
                        onChange={(e) => void update(u, { role: e.target.value as Role })}
                      >
                        <option value="user">user</option>
                        <option value="admin">admin</option>
                      </select>
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Disable ${u.email}`}
                        checked={u.disabled}
                        disabled={self}
                        onChange={(e) => void update(u, { disabled: e.target.checked })}
                      />
                    </td>
                    <td>{new Date(u.createdAt).toLocaleDateString()}</td>
                    <td className="inline">
                      {u.pending && (
                        <button
                          type="button"
                          className="btn btn-small btn-primary"
                          aria-label={`Approve ${u.email}`}
                          onClick={() => void approve(u)}
                        >
                          Approve
                        </button>
                      )}
                      <button
                        type="button"
                        className="btn btn-small"
                        aria-label={`Password-reset link for ${u.email}`}
                        onClick={() => void makeResetLink(u)}
                      >
                        Reset link
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

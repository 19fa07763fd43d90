"use client";

import Link from "next/link";
import { useCallback, useEffect, useState } from "react";
import { ApiError, api } from "@/lib/api";
import type { AdminUser, Role } from "@/lib/types";
import { SectionStatus } from "../section-status";
import { useSession } from "../shell/session";
import { hiddenHeader, Table } from "../table";
import { useActions } from "../use-form-action";
import { type Resource, useResource } from "../use-resource";
import { LinkToHandOver } from "./link-to-hand-over";

type Patch = { role?: Role; disabled?: boolean };

/** What a saved change says: "role admin", "disabled"… */
const describePatch = (patch: Patch) =>
  [
    patch.role !== undefined ? `role ${patch.role}` : "",
    patch.disabled !== undefined ? (patch.disabled ? "disabled" : "enabled") : "",
  ]
    .filter(Boolean)
    .join(", ");

/** An admin's changes to users: role and disabled (optimistic), approval, a reset link. */
function useUserActions(
  users: Resource<AdminUser[]>,
  setResetLink: (link: { email: string; url: string }) => void,
) {
  const actions = useActions();
  const update = (u: AdminUser, patch: Patch) => {
    // Optimistic: the control reflects the choice at once; a failure reloads the list.
    const merge = (extra: Partial<AdminUser>) => (list: AdminUser[] | null) =>
      list ? list.map((x) => (x.id === u.id ? { ...x, ...patch, ...extra } : x)) : list;
    users.setData(merge({}));
    actions.run(async () => {
      try {
        users.setData(merge(await api.adminUpdateUser(u.id, patch)));
        return { ok: `Saved: ${u.email} ${describePatch(patch)}.` };
      } catch (err) {
        await users.reload();
        throw err;
      }
    });
  };
  const approve = (u: AdminUser) =>
    actions.run(async () => {
      await api.adminApprove(u.id);
      await users.reload();
      return { ok: `${u.email} is approved.` };
    });
  const makeResetLink = (u: AdminUser) =>
    actions.run(async () => {
      const { link } = await api.adminResetLink(u.id);
      setResetLink({ email: u.email, url: link });
      return { ok: `Password-reset link for ${u.email} (valid one hour, once): hand it over.` };
    });
  return { outcome: actions.outcome, update, approve, makeResetLink };
}

export function UsersSection() {
  const { user: me } = useSession();
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [needs2fa, setNeeds2fa] = useState(false);
  const [resetLink, setResetLink] = useState<{ email: string; url: string } | null>(null);
  // Searching waits for a pause in typing.
  useEffect(() => {
    const t = setTimeout(() => setQuery(q.trim()), q ? 250 : 0);
    return () => clearTimeout(t);
  }, [q]);
  const load = useCallback(() => api.adminUsers(query || undefined), [query]);
  // REQUIRE_ADMIN_2FA on the gateway: admins must turn on two-factor first.
  const onError = useCallback((err: unknown) => {
    const needs = err instanceof ApiError && err.code === "TWO_FACTOR_REQUIRED";
    if (needs) setNeeds2fa(true);
    return needs;
  }, []);
  const users = useResource(load, { onError });
  const actions = useUserActions(users, setResetLink);

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
      <SectionStatus error={actions.outcome.error ?? users.error} ok={actions.outcome.ok} />
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
      ) : users.data === null ? (
        users.error ? null : (
          <p className="muted">Loading…</p>
        )
      ) : users.data.length === 0 ? (
        <p className="muted">No users match.</p>
      ) : (
        <Table
          caption="Users"
          columns={["Name", "Email", "Role", "Disabled", "Created", hiddenHeader("Actions")]}
        >
          {users.data.map((u) => (
            <UserRow
              key={u.id}
              user={u}
              self={u.id === me.id}
              onUpdate={actions.update}
              onApprove={actions.approve}
              onResetLink={actions.makeResetLink}
            />
          ))}
        </Table>
      )}
    </section>
  );
}

/** One user of the admin table: role, disabled, approve (pending accounts), reset link. */
function UserRow({
  user: u,
  self,
  onUpdate,
  onApprove,
  onResetLink,
}: {
  user: AdminUser;
  /** The signed-in admin: role and disabled cannot be changed. */
  self: boolean;
  onUpdate: (u: AdminUser, patch: Patch) => void;
  onApprove: (u: AdminUser) => void;
  onResetLink: (u: AdminUser) => void;
}) {
  return (
    <tr>
      <td>{u.name}</td>
      <td>
        {u.email} {u.pending && <span className="badge badge-bad">pending</span>}
      </td>
      <td>
        <select
          aria-label={`Role of ${u.email}`}
          value={u.role}
          disabled={self}
          onChange={(e) => onUpdate(u, { role: e.target.value as Role })}
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
          onChange={(e) => onUpdate(u, { disabled: e.target.checked })}
        />
      </td>
      <td>{new Date(u.createdAt).toLocaleDateString()}</td>
      <td className="inline">
        {u.pending && (
          <button
            type="button"
            className="btn btn-small btn-primary"
            aria-label={`Approve ${u.email}`}
            onClick={() => onApprove(u)}
          >
            Approve
          </button>
        )}
        <button
          type="button"
          className="btn btn-small"
          aria-label={`Password-reset link for ${u.email}`}
          onClick={() => onResetLink(u)}
        >
          Reset link
        </button>
      </td>
    </tr>
  );
}

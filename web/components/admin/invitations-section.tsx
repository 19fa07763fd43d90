"use client";

import { type FormEvent, useState } from "react";
import { api } from "@/lib/api";
import type { Invitation, Role, SignupMode } from "@/lib/types";
import { errorText, SectionStatus } from "../section-status";
import { useResource } from "../use-resource";
import { LinkToHandOver } from "./link-to-hand-over";

const MODES: { value: SignupMode; label: string }[] = [
  { value: "open", label: "Open: anyone can sign up" },
  { value: "approval", label: "Approval: new accounts wait until an admin approves them" },
  { value: "invite", label: "Invite only: sign-up needs an invitation link" },
  { value: "closed", label: "Closed: nobody can sign up" },
];

const loadInvitations = async () => {
  const [settings, invitations] = await Promise.all([api.adminSettings(), api.adminInvitations()]);
  return { settings, invitations };
};

/** Sign-up policy, mail delivery, and invitations (invite, copy the link, revoke). */
export function InvitationsSection() {
  const doc = useResource(loadInvitations);
  const settings = doc.data?.settings ?? null;
  const invitations = doc.data?.invitations ?? null;
  const reload = doc.reload;
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);
  const [link, setLink] = useState<{ email: string; url: string } | null>(null);
  const [busy, setBusy] = useState(false);

  async function setMode(mode: SignupMode) {
    setError(null);
    setOk(null);
    try {
      await api.adminSetSignupMode(mode);
      setOk(`Sign-up is now: ${mode}.`);
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function onInvite(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    const email = String(form.get("email"));
    setBusy(true);
    setError(null);
    setOk(null);
    setLink(null);
    try {
      const sent = await api.adminInvite(email, String(form.get("role")) as Role);
      if (sent.mail.sent) setOk(`Invitation mailed to ${email}.`);
      else {
        setOk(
          sent.mail.reason === "failed"
            ? `The mail to ${email} failed (${sent.mail.error}): hand over the link below.`
            : `No mail server is set up (SMTP_URL): hand over the link below to ${email}.`,
        );
        if (sent.link) setLink({ email, url: sent.link });
      }
      formEl.reset();
      await reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  async function revoke(i: Invitation) {
    setError(null);
    setOk(null);
    try {
      await api.adminRevokeInvitation(i.id);
      setOk(`Invitation for ${i.email} revoked.`);
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  }

  const mail = settings?.mail;
  return (
    <section className="panel stack" aria-labelledby="invitations-h">
      <h2 id="invitations-h">Sign-up and invitations</h2>
      {settings && (
        <div className="field">
          <label htmlFor="signup-mode">Who can create an account</label>
          <select
            id="signup-mode"
            value={settings.signupMode}
            onChange={(e) => void setMode(e.target.value as SignupMode)}
          >
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
          <small className="muted">
            The server starts with <code>SIGNUP_MODE={settings.signupModeDefault}</code>; this
            choice is stored and wins over it.
          </small>
        </div>
      )}
      {mail && (
        <p className="muted" data-testid="mail-status">
          {mail.configured
            ? `Mail: ${mail.sent} sent, ${mail.failed} failed.`
            : "Mail: no SMTP server is set up (SMTP_URL): invitation and reset links are shown here to hand over."}
          {mail.lastFailure &&
            ` Last failure (${mail.lastFailure.kind}, ${new Date(mail.lastFailure.at).toLocaleString()}): ${mail.lastFailure.error}`}
        </p>
      )}
      <form className="inline-form" onSubmit={onInvite} aria-label="Invite">
        <div className="field">
          <label htmlFor="invite-email">Email to invite</label>
          <input id="invite-email" name="email" type="email" required maxLength={254} />
        </div>
        <div className="field">
          <label htmlFor="invite-role">Role</label>
          <select id="invite-role" name="role" defaultValue="user">
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </div>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Inviting…" : "Invite"}
        </button>
      </form>
      <SectionStatus error={error ?? doc.error} ok={ok} />
      {link && (
        <LinkToHandOver
          id="invite-link"
          label={`Invitation link for ${link.email}`}
          url={link.url}
        />
      )}
      {invitations && invitations.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Invitations</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {invitations.map((i) => (
                <tr key={i.id}>
                  <td>{i.email}</td>
                  <td>{i.role}</td>
                  <td>{i.status}</td>
                  <td>{new Date(i.expiresAt).toLocaleString()}</td>
                  <td>
                    {i.status === "pending" && (
                      <button
                        type="button"
                        className="btn btn-small"
                        aria-label={`Revoke the invitation for ${i.email}`}
                        onClick={() => void revoke(i)}
                      >
                        Revoke
                      </button>
                    )}
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

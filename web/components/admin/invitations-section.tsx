"use client";

import { useState } from "react";
import { api } from "@/lib/api";
import type { AdminSettings, Invitation, Role, SignupMode } from "@/lib/types";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { hiddenHeader, Table } from "../table";
import { useActions } from "../use-form-action";
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
  const actions = useActions();
  const [link, setLink] = useState<{ email: string; url: string } | null>(null);
  const settings = doc.data?.settings;

  const setMode = (mode: SignupMode) =>
    actions.run(async () => {
      await api.adminSetSignupMode(mode);
      await doc.reload();
      return { ok: `Sign-up is now: ${mode}.` };
    });
  const invite = actions.onSubmit(async (form, element) => {
    const email = String(form.get("email"));
    const sent = await api.adminInvite(email, String(form.get("role")) as Role);
    if (!sent.mail.sent && sent.link) setLink({ email, url: sent.link });
    element.reset();
    await doc.reload();
    if (sent.mail.sent) return { ok: `Invitation mailed to ${email}.` };
    return {
      ok:
        sent.mail.reason === "failed"
          ? `The mail to ${email} failed (${sent.mail.error}): hand over the link below.`
          : `No mail server is set up (SMTP_URL): hand over the link below to ${email}.`,
    };
  });
  const revoke = (i: Invitation) =>
    actions.run(async () => {
      await api.adminRevokeInvitation(i.id);
      await doc.reload();
      return { ok: `Invitation for ${i.email} revoked.` };
    });

  return (
    <section className="panel stack" aria-labelledby="invitations-h">
      <h2 id="invitations-h">Sign-up and invitations</h2>
      {settings && <SignupModeField settings={settings} onChange={setMode} />}
      {settings && <MailStatus mail={settings.mail} />}
      <form
        className="inline-form"
        onSubmit={(e) => {
          setLink(null);
          invite(e);
        }}
        aria-label="Invite"
      >
        <Field
          id="invite-email"
          label="Email to invite"
          name="email"
          type="email"
          required
          maxLength={254}
        />
        <div className="field">
          <label htmlFor="invite-role">Role</label>
          <select id="invite-role" name="role" defaultValue="user">
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </div>
        <button type="submit" className="btn btn-primary" disabled={actions.pending}>
          {actions.pending ? "Inviting…" : "Invite"}
        </button>
      </form>
      <SectionStatus error={actions.outcome.error ?? doc.error} ok={actions.outcome.ok} />
      {link && (
        <LinkToHandOver
          id="invite-link"
          label={`Invitation link for ${link.email}`}
          url={link.url}
        />
      )}
      {doc.data && doc.data.invitations.length > 0 && (
        <InvitationsTable invitations={doc.data.invitations} onRevoke={revoke} />
      )}
    </section>
  );
}

function SignupModeField({
  settings,
  onChange,
}: {
  settings: AdminSettings;
  onChange: (mode: SignupMode) => void;
}) {
  return (
    <div className="field">
      <label htmlFor="signup-mode">Who can create an account</label>
      <select
        id="signup-mode"
        value={settings.signupMode}
        onChange={(e) => onChange(e.target.value as SignupMode)}
      >
        {MODES.map((m) => (
          <option key={m.value} value={m.value}>
            {m.label}
          </option>
        ))}
      </select>
      <small className="muted">
        The server starts with <code>SIGNUP_MODE={settings.signupModeDefault}</code>; this choice is
        stored and wins over it.
      </small>
    </div>
  );
}

function MailStatus({ mail }: { mail: AdminSettings["mail"] }) {
  return (
    <p className="muted" data-testid="mail-status">
      {mail.configured
        ? `Mail: ${mail.sent} sent, ${mail.failed} failed.`
        : "Mail: no SMTP server is set up (SMTP_URL): invitation and reset links are shown here to hand over."}
      {mail.lastFailure &&
        ` Last failure (${mail.lastFailure.kind}, ${new Date(mail.lastFailure.at).toLocaleString()}): ${mail.lastFailure.error}`}
    </p>
  );
}

function InvitationsTable({
  invitations,
  onRevoke,
}: {
  invitations: Invitation[];
  onRevoke: (i: Invitation) => void;
}) {
  return (
    <Table
      caption="Invitations"
      columns={["Email", "Role", "Status", "Expires", hiddenHeader("Actions")]}
    >
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
                onClick={() => onRevoke(i)}
              >
                Revoke
              </button>
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}

"use client";

import { api } from "@/lib/api";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { useSession } from "../shell/session";
import { useFormAction } from "../use-form-action";

export function ProfileSection() {
  const { user } = useSession();
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    await api.updateProfile(String(form.get("name")).trim());
    return { ok: "Profile saved." };
  });
  return (
    <section className="panel" aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <form className="stack" onSubmit={onSubmit}>
        <Field id="profile-email" label="Email" value={user.email} readOnly />
        <Field
          id="profile-name"
          label="Name"
          name="name"
          defaultValue={user.name}
          required
          autoComplete="name"
        />
        <p className="muted small">
          Role: {user.role} · member since {new Date(user.createdAt).toLocaleDateString()}
        </p>
        <SectionStatus {...outcome} />
        <div>
          <button type="submit" className="btn btn-primary" disabled={pending}>
            Save profile
          </button>
        </div>
      </form>
    </section>
  );
}

export function PasswordSection() {
  const { outcome, pending, onSubmit } = useFormAction(async (form, element) => {
    const next = String(form.get("new"));
    if (next !== String(form.get("confirm"))) return { error: "The two new passwords differ." };
    await api.changePassword(String(form.get("current")), next);
    element.reset();
    return { ok: "Password changed." };
  });
  return (
    <section className="panel" aria-labelledby="password-h">
      <h2 id="password-h">Password</h2>
      <form className="stack" onSubmit={onSubmit}>
        <Field
          id="pw-current"
          label="Current password"
          name="current"
          type="password"
          autoComplete="current-password"
          required
        />
        <Field
          id="pw-new"
          label="New password"
          name="new"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
        />
        <Field
          id="pw-confirm"
          label="Repeat new password"
          name="confirm"
          type="password"
          autoComplete="new-password"
          minLength={8}
          required
        />
        <SectionStatus {...outcome} />
        <div>
          <button type="submit" className="btn btn-primary" disabled={pending}>
            Change password
          </button>
        </div>
      </form>
    </section>
  );
}

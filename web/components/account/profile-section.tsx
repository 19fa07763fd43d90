"use client";

import { type FormEvent, useState } from "react";
import { api } from "@/lib/api";
import { errorText, SectionStatus } from "../section-status";
import { useSession } from "../shell/session";

export function ProfileSection() {
  const { user } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    setOk(null);
    try {
      await api.updateProfile(String(new FormData(e.currentTarget).get("name")).trim());
      setOk("Profile saved.");
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <section className="panel" aria-labelledby="profile-h">
      <h2 id="profile-h">Profile</h2>
      <form className="stack" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="profile-email">Email</label>
          <input id="profile-email" value={user.email} readOnly />
        </div>
        <div className="field">
          <label htmlFor="profile-name">Name</label>
          <input
            id="profile-name"
            name="name"
            defaultValue={user.name}
            required
            autoComplete="name"
          />
        </div>
        <p className="muted small">
          Role: {user.role} · member since {new Date(user.createdAt).toLocaleDateString()}
        </p>
        <SectionStatus error={error} ok={ok} />
        <div>
          <button type="submit" className="btn btn-primary">
            Save profile
          </button>
        </div>
      </form>
    </section>
  );
}

export function PasswordSection() {
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    setError(null);
    setOk(null);
    const next = String(form.get("new"));
    if (next !== String(form.get("confirm"))) {
      setError("The two new passwords differ.");
      return;
    }
    try {
      await api.changePassword(String(form.get("current")), next);
      formEl.reset();
      setOk("Password changed.");
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <section className="panel" aria-labelledby="password-h">
      <h2 id="password-h">Password</h2>
      <form className="stack" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="pw-current">Current password</label>
          <input
            id="pw-current"
            name="current"
            type="password"
            autoComplete="current-password"
            required
          />
        </div>
        <div className="field">
          <label htmlFor="pw-new">New password</label>
          <input
            id="pw-new"
            name="new"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
        </div>
        <div className="field">
          <label htmlFor="pw-confirm">Repeat new password</label>
          <input
            id="pw-confirm"
            name="confirm"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
        </div>
        <SectionStatus error={error} ok={ok} />
        <div>
          <button type="submit" className="btn btn-primary">
            Change password
          </button>
        </div>
      </form>
    </section>
  );
}

"use client";

import { type FormEvent, useState } from "react";
import { api } from "@/lib/api";
import { errorText, SectionStatus } from "../section-status";

export function DeleteAccountSection() {
  const [error, setError] = useState<string | null>(null);
  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!window.confirm("Delete your account and all its conversations and keys?")) return;
    setError(null);
    try {
      await api.deleteAccount(String(new FormData(e.currentTarget).get("password")));
      window.location.assign("/");
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <section className="panel danger-zone" aria-labelledby="delete-h">
      <h2 id="delete-h">Delete account</h2>
      <form className="inline-form" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="delete-password">Password</label>
          <input
            id="delete-password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
          />
        </div>
        <button type="submit" className="btn btn-danger">
          Delete my account
        </button>
      </form>
      <SectionStatus error={error} />
    </section>
  );
}

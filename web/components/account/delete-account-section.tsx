"use client";

import { api } from "@/lib/api";
import { Field } from "../field";
import { SectionStatus } from "../section-status";
import { useFormAction } from "../use-form-action";

export function DeleteAccountSection() {
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    if (!window.confirm("Delete your account and all its conversations and keys?")) return {};
    await api.deleteAccount(String(form.get("password")));
    window.location.assign("/");
    return {};
  });
  return (
    <section className="panel danger-zone" aria-labelledby="delete-h">
      <h2 id="delete-h">Delete account</h2>
      <form className="inline-form" onSubmit={onSubmit}>
        <Field
          id="delete-password"
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
        />
        <button type="submit" className="btn btn-danger" disabled={pending}>
          Delete my account
        </button>
      </form>
      <SectionStatus error={outcome.error} />
    </section>
  );
}

"use client";

import { useRouter } from "next/navigation";
import { AccountFields, createAndSignIn, passwordMismatch } from "@/components/auth/account-fields";
import { FormError } from "@/components/auth/form-error";
import { useFormAction } from "@/components/use-form-action";

/**
 * Creates the first admin account with the one-time setup token, then signs in and opens
 * the admin page. The gateway checks the token (single use, expiring) and the password rules.
 */
export function SetupForm({ token }: { token: string }) {
  const router = useRouter();
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    const mismatch = passwordMismatch(form);
    if (mismatch) return { error: mismatch };
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    const name = String(form.get("name"));
    const done = await createAndSignIn("/api/setup", { token, email, name }, email, password);
    if ("error" in done) return { error: done.error };
    router.replace(done.signedIn ? "/admin" : "/sign-in?next=%2Fadmin");
    router.refresh();
    return {};
  });

  if (!token) {
    return (
      <div className="stack">
        <h1>Create the admin account</h1>
        <p role="alert" className="alert alert-error">
          This page needs the one-time link the gateway prints when it starts without an admin (or{" "}
          <code>gateway/bin/admin setup-link</code>).
        </p>
      </div>
    );
  }

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="setup-heading">
      <h1 id="setup-heading">Create the admin account</h1>
      <p className="muted">
        This one-time link makes the first administrator of this installation. It stops working once
        used.
      </p>
      <AccountFields />
      <FormError message={outcome.error ?? null} />
      <button type="submit" className="btn btn-primary btn-block" disabled={pending}>
        {pending ? "Creating…" : "Create admin account"}
      </button>
    </form>
  );
}

"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { errorFromResponse } from "@/lib/http";
import { useFormAction } from "../use-form-action";
import { AccountFields, createAndSignIn, passwordMismatch } from "./account-fields";
import { FormError } from "./form-error";

const post = (path: string, body: unknown) =>
  fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/**
 * Creates the invited account: the email comes from the invitation (it cannot be changed),
 * the person chooses name and password; then signs in and opens the chat.
 */
export function InviteForm({ token }: { token: string }) {
  const router = useRouter();
  const [email, setEmail] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = useFormAction(async (form) => {
    if (!email) return {};
    const mismatch = passwordMismatch(form);
    if (mismatch) return { error: mismatch };
    const password = String(form.get("password"));
    const name = String(form.get("name"));
    const done = await createAndSignIn("/api/invitations/accept", { token, name }, email, password);
    if ("error" in done) return { error: done.error };
    router.replace(done.signedIn ? "/chat" : "/sign-in?next=%2Fchat");
    router.refresh();
    return {};
  });

  useEffect(() => {
    if (!token) return;
    post("/api/invitations/inspect", { token }).then(
      async (res) => {
        if (res.ok) setEmail(((await res.json()) as { email: string }).email);
        else setError((await errorFromResponse(res)).message);
      },
      () => setError("The server could not be reached. Reload the page to try again."),
    );
  }, [token]);

  if (!token) {
    return (
      <div className="stack">
        <h1>Accept your invitation</h1>
        <p role="alert" className="alert alert-error">
          This page needs the link from your invitation mail. Ask an administrator for one.
        </p>
      </div>
    );
  }

  return (
    <form onSubmit={submit.onSubmit} className="stack" aria-labelledby="invite-heading">
      <h1 id="invite-heading">Accept your invitation</h1>
      {email ? (
        <p>
          Create your account for <strong>{email}</strong>.
        </p>
      ) : (
        !error && <p className="muted">Checking the invitation…</p>
      )}
      <AccountFields email={false} />
      <FormError message={submit.outcome.error ?? error} />
      <button
        type="submit"
        className="btn btn-primary btn-block"
        disabled={submit.pending || !email}
      >
        {submit.pending ? "Creating account…" : "Create account"}
      </button>
      <p className="muted">
        Already have an account? <Link href="/sign-in">Sign in</Link>
      </p>
    </form>
  );
}

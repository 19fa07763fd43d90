"use client";

import Link from "next/link";
import { type FormEvent, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { FormError } from "./form-error";

export function ForgotPasswordForm() {
  const [error, setError] = useState<string | null>(null);
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const email = String(new FormData(e.currentTarget).get("email"));
    setBusy(true);
    setError(null);
    let retryAfter: number | undefined;
    try {
      const res = await authClient.requestPasswordReset(
        { email, redirectTo: `${window.location.origin}/reset-password` },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) setError(authErrorMessage(res.error, retryAfter, "reset"));
      else setSent(true);
    } catch {
      setError(authErrorMessage({ status: 0 }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="forgot-heading">
      <h1 id="forgot-heading">Reset your password</h1>
      {sent ? (
        <p role="status" className="alert alert-ok">
          If an account exists for this address, a reset link is on its way.
        </p>
      ) : (
        <>
          <div className="field">
            <label htmlFor="email">Email</label>
            <input id="email" name="email" type="email" autoComplete="email" required />
          </div>
          <FormError message={error} />
          <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
            Send reset link
          </button>
        </>
      )}
      <p className="muted">
        <Link href="/sign-in">Back to sign in</Link>
      </p>
    </form>
  );
}

export function ResetPasswordForm({ token }: { token: string | null }) {
  const [error, setError] = useState<string | null>(
    token ? null : "This reset link is incomplete.",
  );
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!token) return;
    const form = new FormData(e.currentTarget);
    const newPassword = String(form.get("password"));
    if (newPassword !== String(form.get("confirm"))) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const res = await authClient.resetPassword({ newPassword, token });
      if (res.error) setError(authErrorMessage(res.error, undefined, "reset"));
      else setDone(true);
    } catch {
      setError(authErrorMessage({ status: 0 }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="reset-heading">
      <h1 id="reset-heading">Choose a new password</h1>
      {done ? (
        <p role="status" className="alert alert-ok">
          Password changed. <Link href="/sign-in">Sign in</Link>
        </p>
      ) : (
        <>
          <div className="field">
            <label htmlFor="password">New password</label>
            <input
              id="password"
              name="password"
              type="password"
              autoComplete="new-password"
              minLength={8}
              required
            />
          </div>
          <div className="field">
            <label htmlFor="confirm">Repeat new password</label>
            <input
              id="confirm"
              name="confirm"
              type="password"
              autoComplete="new-password"
              minLength={8}
              required
            />
          </div>
          <FormError message={error} />
          <button type="submit" className="btn btn-primary btn-block" disabled={busy || !token}>
            Set password
          </button>
        </>
      )}
    </form>
  );
}

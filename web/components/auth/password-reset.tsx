"use client";

import Link from "next/link";
import { useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { Field } from "../field";
import { useFormAction } from "../use-form-action";
import { FormError } from "./form-error";

export function ForgotPasswordForm() {
  const [sent, setSent] = useState(false);
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    let retryAfter: number | undefined;
    try {
      const res = await authClient.requestPasswordReset(
        {
          email: String(form.get("email")),
          redirectTo: `${window.location.origin}/reset-password`,
        },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) return { error: authErrorMessage(res.error, retryAfter, "reset") };
      setSent(true);
      return {};
    } catch {
      return { error: authErrorMessage({ status: 0 }) };
    }
  });

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="forgot-heading">
      <h1 id="forgot-heading">Reset your password</h1>
      {sent ? (
        <p role="status" className="alert alert-ok">
          If an account exists for this address, a reset link is on its way.
        </p>
      ) : (
        <>
          <Field id="email" label="Email" name="email" type="email" autoComplete="email" required />
          <FormError message={outcome.error ?? null} />
          <button type="submit" className="btn btn-primary btn-block" disabled={pending}>
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
  const [done, setDone] = useState(false);
  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    if (!token) return {};
    const newPassword = String(form.get("password"));
    if (newPassword !== String(form.get("confirm"))) return { error: "The two passwords differ." };
    try {
      const res = await authClient.resetPassword({ newPassword, token });
      if (res.error) return { error: authErrorMessage(res.error, undefined, "reset") };
      setDone(true);
      return {};
    } catch {
      return { error: authErrorMessage({ status: 0 }) };
    }
  });
  const error = token ? (outcome.error ?? null) : "This reset link is incomplete.";

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="reset-heading">
      <h1 id="reset-heading">Choose a new password</h1>
      {done ? (
        <p role="status" className="alert alert-ok">
          Password changed. <Link href="/sign-in">Sign in</Link>
        </p>
      ) : (
        <>
          <Field
            id="password"
            label="New password"
            name="password"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
          <Field
            id="confirm"
            label="Repeat new password"
            name="confirm"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
          />
          <FormError message={error} />
          <button type="submit" className="btn btn-primary btn-block" disabled={pending || !token}>
            Set password
          </button>
        </>
      )}
    </form>
  );
}

"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { Field } from "../field";
import { useFormAction } from "../use-form-action";
import { FormError } from "./form-error";
import { OAuthButtons } from "./oauth-buttons";

export function SignInForm({ next }: { next: string }) {
  const router = useRouter();
  const [step, setStep] = useState<"password" | "totp">("password");

  const done = () => {
    router.replace(next);
    router.refresh();
  };

  const password = useFormAction(async (form) => {
    let retryAfter: number | undefined;
    try {
      const res = await authClient.signIn.email(
        { email: String(form.get("email")), password: String(form.get("password")) },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) return { error: authErrorMessage(res.error, retryAfter) };
      if ((res.data as { twoFactorRedirect?: boolean } | null)?.twoFactorRedirect) setStep("totp");
      else done();
      return {};
    } catch {
      return { error: authErrorMessage({ status: 0 }) };
    }
  });

  if (step === "totp") return <TotpStep onDone={done} onBack={() => setStep("password")} />;

  return (
    <form
      key="password"
      onSubmit={password.onSubmit}
      className="stack"
      aria-labelledby="sign-in-heading"
    >
      <h1 id="sign-in-heading">Sign in</h1>
      <Field id="email" label="Email" name="email" type="email" autoComplete="email" required />
      <Field
        id="password"
        label="Password"
        name="password"
        type="password"
        autoComplete="current-password"
        required
      />
      <FormError message={password.outcome.error ?? null} />
      <button type="submit" className="btn btn-primary btn-block" disabled={password.pending}>
        {password.pending ? "Signing in…" : "Sign in"}
      </button>
      <OAuthButtons next={next} />
      <p className="muted">
        <Link href="/forgot-password">Forgot your password?</Link>
        <br />
        No account yet? <Link href={`/sign-up?next=${encodeURIComponent(next)}`}>Sign up</Link>
      </p>
    </form>
  );
}

/** The second step for an account with two-factor authentication: the authenticator's code. */
function TotpStep({ onDone, onBack }: { onDone: () => void; onBack: () => void }) {
  const totp = useFormAction(async (form) => {
    let retryAfter: number | undefined;
    try {
      const res = await authClient.twoFactor.verifyTotp(
        {
          code: String(form.get("code")).replace(/\s+/g, ""),
          trustDevice: form.get("trust") === "on",
        },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) return { error: authErrorMessage(res.error, retryAfter, "two-factor") };
      onDone();
      return {};
    } catch {
      return { error: authErrorMessage({ status: 0 }) };
    }
  });
  return (
    // Its own component: React never reuses the password input (and its value) for the code.
    <form onSubmit={totp.onSubmit} className="stack" aria-labelledby="totp-heading">
      <h1 id="totp-heading">Two-factor authentication</h1>
      <p className="muted">Enter the 6-digit code from your authenticator app.</p>
      <Field
        id="code"
        label="Authentication code"
        name="code"
        inputMode="numeric"
        autoComplete="one-time-code"
        minLength={6}
        maxLength={8}
        required
        autoFocus
      />
      <label className="check">
        <input type="checkbox" name="trust" /> Trust this device for 30 days
      </label>
      <FormError message={totp.outcome.error ?? null} />
      <button type="submit" className="btn btn-primary btn-block" disabled={totp.pending}>
        {totp.pending ? "Verifying…" : "Verify"}
      </button>
      <button type="button" className="btn btn-ghost" onClick={onBack}>
        Back
      </button>
    </form>
  );
}

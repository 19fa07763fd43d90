"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { FormError } from "./form-error";
import { OAuthButtons } from "./oauth-buttons";

export function SignInForm({ next }: { next: string }) {
  const router = useRouter();
  const [step, setStep] = useState<"password" | "totp">("password");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const done = () => {
    router.replace(next);
    router.refresh();
  };

  async function onPassword(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
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
      if (res.error) {
        setError(authErrorMessage(res.error, retryAfter));
      } else if ((res.data as { twoFactorRedirect?: boolean } | null)?.twoFactorRedirect) {
        setStep("totp");
      } else {
        done();
      }
    } catch {
      setError(authErrorMessage({ status: 0 }));
    } finally {
      setBusy(false);
    }
  }

  async function onTotp(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
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
      if (res.error) setError(authErrorMessage(res.error, retryAfter, "two-factor"));
      else done();
    } catch {
      setError(authErrorMessage({ status: 0 }));
    } finally {
      setBusy(false);
    }
  }

  if (step === "totp") {
    return (
      // A distinct key: React must not reuse the password input (and its value) for the code.
      <form key="totp" onSubmit={onTotp} className="stack" aria-labelledby="totp-heading">
        <h1 id="totp-heading">Two-factor authentication</h1>
        <p className="muted">Enter the 6-digit code from your authenticator app.</p>
        <div className="field">
          <label htmlFor="code">Authentication code</label>
          <input
            id="code"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            minLength={6}
            maxLength={8}
            required
            // biome-ignore lint/a11y/noAutofocus: the only field of this step
            autoFocus
          />
        </div>
        <label className="check">
          <input type="checkbox" name="trust" /> Trust this device for 30 days
        </label>
        <FormError message={error} />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Verifying…" : "Verify"}
        </button>
        <button type="button" className="btn btn-ghost" onClick={() => setStep("password")}>
          Back
        </button>
      </form>
    );
  }

  return (
    <form key="password" onSubmit={onPassword} className="stack" aria-labelledby="sign-in-heading">
      <h1 id="sign-in-heading">Sign in</h1>
      <div className="field">
        <label htmlFor="email">Email</label>
        <input id="email" name="email" type="email" autoComplete="email" required />
      </div>
      <div className="field">
        <label htmlFor="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
        />
      </div>
      <FormError message={error} />
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
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

"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { AccountFields, passwordMismatch } from "./account-fields";
import { FormError } from "./form-error";
import { OAuthButtons } from "./oauth-buttons";

export function SignUpForm({ next }: { next: string }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [verify, setVerify] = useState<string | null>(null);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const password = String(form.get("password"));
    const mismatch = passwordMismatch(form);
    if (mismatch) {
      setError(mismatch);
      return;
    }
    setBusy(true);
    setError(null);
    let retryAfter: number | undefined;
    try {
      const res = await authClient.signUp.email(
        { name: String(form.get("name")), email: String(form.get("email")), password },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) {
        setError(authErrorMessage(res.error, retryAfter, "sign-up"));
      } else if (!res.data?.token) {
        // REQUIRE_EMAIL_VERIFICATION: no session until the mailed link is opened.
        setVerify(String(form.get("email")));
      } else {
        router.replace(next);
        router.refresh();
      }
    } catch {
      setError(authErrorMessage({ status: 0 }));
    } finally {
      setBusy(false);
    }
  }

  if (verify) {
    return (
      <div className="stack">
        <h1>Check your inbox</h1>
        <p role="status">
          We sent a link to <strong>{verify}</strong>. Open it to confirm your address, then sign
          in. No mail? Signing in sends a new one.
        </p>
        <Link href={`/sign-in?next=${encodeURIComponent(next)}`}>Sign in</Link>
      </div>
    );
  }

  return (
    <form onSubmit={onSubmit} className="stack" aria-labelledby="sign-up-heading">
      <h1 id="sign-up-heading">Create an account</h1>
      <AccountFields />
      <FormError message={error} />
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? "Creating account…" : "Sign up"}
      </button>
      <OAuthButtons next={next} />
      <p className="muted">
        Already have an account?{" "}
        <Link href={`/sign-in?next=${encodeURIComponent(next)}`}>Sign in</Link>
      </p>
    </form>
  );
}

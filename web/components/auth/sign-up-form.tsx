"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { type FormEvent, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { AccountFields } from "./account-fields";
import { FormError } from "./form-error";
import { OAuthButtons } from "./oauth-buttons";

export function SignUpForm({ next }: { next: string }) {
  const router = useRouter();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const password = String(form.get("password"));
    if (password !== String(form.get("confirm"))) {
      setError("The two passwords differ.");
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

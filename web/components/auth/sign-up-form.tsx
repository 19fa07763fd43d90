"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { authClient } from "@/lib/auth-client";
import { authErrorMessage } from "@/lib/auth-errors";
import { retryAfterFrom } from "@/lib/http";
import { useFormAction } from "../use-form-action";
import { AccountFields, passwordMismatch } from "./account-fields";
import { FormError } from "./form-error";
import { OAuthButtons } from "./oauth-buttons";

export function SignUpForm({ next }: { next: string }) {
  const router = useRouter();
  const [verify, setVerify] = useState<string | null>(null);

  const { outcome, pending, onSubmit } = useFormAction(async (form) => {
    const mismatch = passwordMismatch(form);
    if (mismatch) return { error: mismatch };
    const email = String(form.get("email"));
    let retryAfter: number | undefined;
    try {
      const res = await authClient.signUp.email(
        { name: String(form.get("name")), email, password: String(form.get("password")) },
        {
          onError: (ctx) => {
            retryAfter = retryAfterFrom(ctx.response.headers);
          },
        },
      );
      if (res.error) return { error: authErrorMessage(res.error, retryAfter, "sign-up") };
      // REQUIRE_EMAIL_VERIFICATION: no session until the mailed link is opened.
      if (!res.data?.token) setVerify(email);
      else {
        router.replace(next);
        router.refresh();
      }
      return {};
    } catch {
      return { error: authErrorMessage({ status: 0 }) };
    }
  });

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
      <FormError message={outcome.error ?? null} />
      <button type="submit" className="btn btn-primary btn-block" disabled={pending}>
        {pending ? "Creating account…" : "Sign up"}
      </button>
      <OAuthButtons next={next} />
      <p className="muted">
        Already have an account?{" "}
        <Link href={`/sign-in?next=${encodeURIComponent(next)}`}>Sign in</Link>
      </p>
    </form>
  );
}

"use client";

import { useEffect, useState } from "react";
import { api } from "@/lib/api";
import { authClient } from "@/lib/auth-client";
import type { AuthProvider } from "@/lib/types";

/** One button per OAuth provider the gateway has configured (none: renders nothing). */
export function OAuthButtons({ next }: { next: string }) {
  const [providers, setProviders] = useState<AuthProvider[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.authProviders().then(setProviders, () => setProviders([]));
  }, []);
  if (providers.length === 0) return null;
  const callbackURL = `${window.location.origin}${next}`;
  return (
    <div className="oauth">
      <p className="divider">
        <span>or</span>
      </p>
      {providers.map((p) => (
        <button
          key={p.id}
          type="button"
          className="btn btn-block"
          onClick={async () => {
            setError(null);
            const res = await authClient.signIn.social({ provider: p.id, callbackURL });
            if (res?.error) {
              // Providers configured through generic OAuth live at /sign-in/oauth2.
              const alt = await authClient.$fetch("/sign-in/oauth2", {
                method: "POST",
                body: { providerId: p.id, callbackURL },
              });
              const url = (alt.data as { url?: string } | null)?.url;
              if (url) window.location.assign(url);
              else setError(res.error.message ?? `Could not continue with ${p.name}.`);
            }
          }}
        >
          Continue with {p.name}
        </button>
      ))}
      {error ? (
        <p role="alert" className="alert alert-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}

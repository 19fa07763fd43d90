"use client";

import type { User } from "@/lib/types";
import { SignOutButton } from "./sign-out-button";

/**
 * What a pending account sees instead of the app (sign-up in approval mode): the gateway
 * refuses everything else (403 ACCOUNT_PENDING) until an admin approves it.
 */
export function PendingAccount({ user }: { user: User }) {
  return (
    <main id="main" className="container stack" aria-labelledby="pending-h">
      <h1 id="pending-h">Waiting for approval</h1>
      <p>
        Your account <strong>{user.email}</strong> was created. An administrator of this server has
        to approve it before you can chat or create API keys.
      </p>
      <p className="muted">Come back later, or ask an administrator to approve your account.</p>
      <div className="inline">
        <button type="button" className="btn" onClick={() => window.location.reload()}>
          Check again
        </button>
        <SignOutButton className="btn" />
      </div>
    </main>
  );
}

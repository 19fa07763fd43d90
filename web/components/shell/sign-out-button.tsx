"use client";

/** Signs out and goes to the sign-in page. */
export function SignOutButton({ className = "btn btn-small" }: { className?: string }) {
  return (
    <button
      type="button"
      className={className}
      onClick={async () => {
        // Loaded on demand: keeps better-auth's client out of every page's first load.
        const { authClient } = await import("@/lib/auth-client");
        await authClient.signOut().catch(() => {});
        window.location.assign("/sign-in");
      }}
    >
      Sign out
    </button>
  );
}

/**
 * better-auth's browser client. Its base URL is this web origin: `/api/auth/*`
 * is proxied to the gateway, which runs better-auth (same version, 1.7.5).
 */
import { twoFactorClient } from "better-auth/client/plugins";
import { createAuthClient } from "better-auth/react";

function origin(): string {
  return typeof window === "undefined" ? "http://localhost" : window.location.origin;
}

export const authClient = createAuthClient({
  baseURL: origin(),
  plugins: [twoFactorClient()],
});

/** Keeps redirects on this site: only paths like "/chat/1", never "//evil" or "https://…". */
export function safeNext(next: string | null | undefined, fallback = "/chat"): string {
  if (!next?.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) {
    return fallback;
  }
  return next;
}

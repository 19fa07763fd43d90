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

/**
 * A stand-in for this site's origin. Pages are rendered on the server, where the origin the
 * browser used is not known for sure (the Host header is the client's word); any fixed origin
 * gives the same verdict, because only paths are accepted.
 */
const SITE = "https://site.invalid";

/**
 * Keeps redirects on this site: `next` is resolved against the site's origin the way a browser
 * will resolve it, and only a result on that origin is kept, normalised ("/chat/1?x=1").
 * Anything the browser would read as another host — "//evil", "/\\evil", "/\t/evil" (the URL
 * parser drops tabs and newlines), "/..//evil" (dot segments collapse to "//evil"),
 * "https://evil", "javascript:…" — gives `fallback`.
 */
export function safeNext(next: string | null | undefined, fallback = "/chat"): string {
  // Only a path: no scheme, no relative reference whose meaning depends on where it is used.
  if (!next?.startsWith("/")) return fallback;
  let url: URL;
  try {
    url = new URL(next, SITE);
  } catch {
    return fallback;
  }
  // A path that still begins with "//" after normalisation is another host to the browser.
  if (url.origin !== SITE || url.pathname.startsWith("//")) return fallback;
  return `${url.pathname}${url.search}${url.hash}`;
}

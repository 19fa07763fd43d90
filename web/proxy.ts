/**
 * Next.js Proxy (the file convention formerly called middleware; not lib/proxy.ts, which
 * streams /api, /v1 and /docs to the gateway): puts the security headers on every page,
 * with a fresh CSP nonce per request (see lib/security-headers.ts).
 */
import { type NextRequest, NextResponse } from "next/server";
import { contentSecurityPolicy, newNonce, SECURITY_HEADERS } from "./lib/security-headers";

export function proxy(request: NextRequest): NextResponse {
  const nonce = newNonce();
  const csp = contentSecurityPolicy(nonce, process.env.NODE_ENV === "development");
  // Next.js reads the nonce from the request's CSP header and puts it on its own scripts.
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("content-security-policy", csp);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
}

export const config = {
  // Pages only: the gateway's paths keep the gateway's own headers (its API docs need their
  // own CSP), and build assets are immutable files (they get nosniff from next.config.ts).
  // Excluding /api and /v1 also keeps request bodies out of the proxy, which would buffer them.
  matcher: ["/((?!(?:api|v1|docs)(?:/|$)|_next/static/|_next/image|favicon\\.ico$).*)"],
};

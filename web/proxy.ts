/**
 * Next.js Proxy (the file convention formerly called middleware; not lib/proxy.ts, which
 * streams /api, /v1 and /docs to the gateway): puts the security headers on every page,
 * with a fresh CSP nonce per request (see lib/security-headers.ts), and answers a page opened
 * at an address PUBLIC_URL does not allow with the page naming the right one
 * (lib/wrong-address.ts) rather than letting its forms fail with "Invalid origin".
 */
import { type NextRequest, NextResponse } from "next/server";
import { publicUrl, trustProxy } from "./lib/env";
import { contentSecurityPolicy, newNonce, SECURITY_HEADERS } from "./lib/security-headers";
import { checkAddress, wrongAddressPage } from "./lib/wrong-address";

export function proxy(request: NextRequest): NextResponse {
  const nonce = newNonce();
  const csp = contentSecurityPolicy(nonce, process.env.NODE_ENV === "development");
  const configured = publicUrl();
  const wrong = configured
    ? checkAddress(request.headers, request.nextUrl, configured, trustProxy())
    : null;
  if (wrong) {
    // 421 Misdirected Request: this server does not answer for that address.
    const page = new NextResponse(wrongAddressPage(wrong, nonce), {
      status: 421,
      headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
    });
    page.headers.set("content-security-policy", csp);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) page.headers.set(name, value);
    return page;
  }
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

/**
 * The security headers of every page the web app renders (set by proxy.ts).
 *
 * The Content-Security-Policy is a strict, nonce-based one: Next.js streams inline
 * `<script>` elements (the React Server Components payload) into every page, so a static
 * `script-src 'self'` would block the app and `'unsafe-inline'` would allow any injected
 * script. A fresh nonce per request, passed to Next.js in the request's own
 * Content-Security-Policy header, is put on the framework's scripts; `'strict-dynamic'` lets
 * those scripts load the app's chunks. Pages are therefore rendered per request.
 *
 * The paths streamed through to the gateway (/api, /v1, /docs) keep the gateway's headers.
 */

/** Headers that do not change per request. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // Never framed (clickjacking); `frame-ancestors 'none'` says the same to CSP-aware browsers.
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  // Powerful features the app never uses. Only names Chromium knows: an unknown one is a
  // console error on every page.
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
  "Cross-Origin-Opener-Policy": "same-origin",
};

/** A fresh, unguessable nonce (128 random bits, base64). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/**
 * The page's Content-Security-Policy for `nonce`. `dev` (next dev) adds what the
 * development server needs: `eval` for React's debugging and inline `<style>` for hot reload.
 */
export function contentSecurityPolicy(nonce: string, dev = false): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    `style-src 'self' ${dev ? "'unsafe-inline'" : `'nonce-${nonce}'`}`,
    // style="…" attributes (chart bar widths, legend colours) cannot run script; `<style>`
    // elements still need the nonce.
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

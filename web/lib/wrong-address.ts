/**
 * The page for an address the app is not configured for. Sign-in and sign-up send the page's
 * origin, and the gateway trusts only the origins derived from PUBLIC_URL: a page opened at any
 * other address (the machine's IP while PUBLIC_URL says localhost, a new host name) would show
 * better-auth's bare "Invalid origin" at the first form. proxy.ts answers such a request with
 * this page instead, which names the address to use and the setting to change.
 */
import { publicOrigins } from "./env";

/** A request opened at an address PUBLIC_URL does not allow. */
export interface WrongAddress {
  /** Where the browser is (scheme://host[:port]), or null when the Host header is unusable. */
  opened: string | null;
  /** PUBLIC_URL's origin. */
  publicUrl: string;
  /** Every origin the app works at, PUBLIC_URL first. */
  origins: string[];
  /** Path and query of the request, to carry over to the right address. */
  path: string;
}

/** The first value of a header that a proxy may have sent as a comma-separated list. */
function firstValue(value: string | null): string | undefined {
  const first = value?.split(",")[0]?.trim();
  return first ? first : undefined;
}

/**
 * Checks the address a page was opened at against PUBLIC_URL: the `Host` header (or, behind a
 * trusted proxy, `X-Forwarded-Host` and `X-Forwarded-Proto`), compared by host and port.
 * @returns null when the address is one of {@link publicOrigins}, else what the page shows.
 */
export function checkAddress(
  headers: Headers,
  url: { pathname: string; search: string },
  publicUrl: string,
  trustProxy: boolean,
): WrongAddress | null {
  const origins = publicOrigins(publicUrl);
  const forwardedHost = trustProxy ? firstValue(headers.get("x-forwarded-host")) : undefined;
  const forwardedProto = trustProxy ? firstValue(headers.get("x-forwarded-proto")) : undefined;
  const host = forwardedHost ?? firstValue(headers.get("host"));
  // Host and port decide, as the browser writes them in the origin (case, default port, IPv6
  // compression); the scheme is the proxy's business (a TLS proxy forwards plain HTTP).
  const publicScheme = new URL(publicUrl).protocol;
  const compared = host ? normaliseHost(host, publicScheme) : null;
  if (compared && origins.some((origin) => new URL(origin).host === compared)) return null;
  const scheme = forwardedProto === "https" ? "https:" : "http:";
  const shown = host ? normaliseHost(host, scheme) : null;
  return {
    opened: shown ? `${scheme}//${shown}` : null,
    publicUrl: origins[0] ?? publicUrl,
    origins,
    path: `${url.pathname}${url.search}`,
  };
}

/** `host` as URL.host spells it for `scheme`, or null when it is not a bare host[:port]. */
function normaliseHost(host: string, scheme: string): string | null {
  try {
    const url = new URL(`${scheme}//${host}`);
    return url.pathname === "/" && !url.username && !url.search && !url.hash ? url.host : null;
  } catch {
    return null;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text safe inside HTML elements and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/**
 * The page's HTML: the address to use (a link to the same path there), and for the operator,
 * the PUBLIC_URL value that would make this address work. Plain HTML, no script; its one
 * `<style>` carries `nonce` (the page's CSP).
 */
export function wrongAddressPage(wrong: WrongAddress, nonce: string): string {
  const e = escapeHtml;
  const target = `${wrong.publicUrl}${wrong.path}`;
  const others = wrong.origins.slice(1);
  const also = others.length ? ` (or ${others.map((o) => `<code>${e(o)}</code>`).join(", ")})` : "";
  const here = wrong.opened ? `<code>${e(wrong.opened)}</code>` : "an address it does not know";
  const localOnly = LOOPBACK.test(wrong.publicUrl)
    ? "<p>That address works only on the machine running the app. From another computer, ask whoever runs it to make it available at an address you can reach.</p>"
    : "";
  const fix = wrong.opened
    ? `<p>To use the app at ${here}, set <code>PUBLIC_URL=${e(wrong.opened)}</code> (in <code>.env</code> for <code>make run</code>, otherwise in the environment of the gateway and the web app) and restart it.</p>`
    : "<p>Set <code>PUBLIC_URL</code> to the address people open the app at and restart it.</p>";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Open the app at its configured address</title>
<style nonce="${e(nonce)}">
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
  main { max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
  code { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
  .use { font-size: 1.15rem; }
</style>
</head>
<body>
<main>
<h1>Open the app at its configured address</h1>
<p>This page was opened at ${here}, but the app is set up to be used at <code>${e(wrong.publicUrl)}</code>${also}. Signing in and signing up work only there: the browser sends the page's address with each of them, and the server refuses any other.</p>
<h2>If you use the app</h2>
<p class="use">Open <a id="public-url" href="${e(target)}">${e(wrong.publicUrl)}</a> instead.</p>
${localOnly}
<h2>If you run it</h2>
${fix}
<p>Behind a reverse proxy, have it pass the original <code>Host</code> header (or <code>X-Forwarded-Host</code>, with <code>WEB_TRUST_PROXY=1</code>).</p>
</main>
</body>
</html>
`;
}

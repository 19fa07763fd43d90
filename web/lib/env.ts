/**
 * The ONE place that reads environment variables for the web service.
 *
 * Everything here is server-side only and is read at request time (never
 * inlined at build), so `GATEWAY_URL` given to `next start` is honoured.
 */

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:4000";

export class EnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvError";
  }
}

/**
 * Validate a gateway base URL: must be an absolute http(s) URL without
 * query string or fragment. Returns it normalised without a trailing slash.
 * An unset or blank value yields the default.
 */
export function parseGatewayUrl(raw: string | undefined): string {
  const value = raw?.trim();
  if (!value) return DEFAULT_GATEWAY_URL;

  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EnvError(
      `GATEWAY_URL must be an http(s) URL such as ${DEFAULT_GATEWAY_URL}, got ${JSON.stringify(value)}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new EnvError(
      `GATEWAY_URL must use http or https, got ${JSON.stringify(url.protocol)} in ${JSON.stringify(value)}`,
    );
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new EnvError(
      `GATEWAY_URL must not contain credentials, a query string or a fragment, got ${JSON.stringify(value)}`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/** Base URL of the gateway, e.g. `http://127.0.0.1:4000` (no trailing slash). */
export function gatewayUrl(env: Record<string, string | undefined> = process.env): string {
  return parseGatewayUrl(env.GATEWAY_URL);
}

/** The spellings of this machine's loopback address (as `URL.hostname` writes them). */
const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/**
 * `PUBLIC_URL`, where people open the app, as its origin (`scheme://host[:port]`), or
 * undefined when unset (no check of the address pages are opened at: `next dev`, tests).
 * The gateway reads the same variable and trusts exactly the origins of {@link publicOrigins}.
 */
export function parsePublicUrl(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EnvError(
      `PUBLIC_URL must be the address people open the app at, like http://localhost:3000, got ${JSON.stringify(value)}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new EnvError(`PUBLIC_URL must use http or https, got ${JSON.stringify(value)}`);
  }
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/") {
    throw new EnvError(
      `PUBLIC_URL must be an origin only (scheme://host[:port]), got ${JSON.stringify(value)}`,
    );
  }
  return url.origin;
}

/**
 * The origins the app works at for `publicUrl`: it, and the other loopback spellings on the
 * same scheme and port when it is a loopback one (the gateway derives the same list).
 */
export function publicOrigins(publicUrl: string): string[] {
  const url = new URL(publicUrl);
  if (!LOOPBACK_HOSTS.includes(url.hostname)) return [url.origin];
  const others = LOOPBACK_HOSTS.filter((host) => host !== url.hostname).map((host) => {
    const alias = new URL(url.origin);
    alias.hostname = host;
    return alias.origin;
  });
  return [url.origin, ...others];
}

/** PUBLIC_URL of the environment (see {@link parsePublicUrl}). */
export function publicUrl(
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  return parsePublicUrl(env.PUBLIC_URL);
}

/** WEB_TRUST_PROXY=1: a reverse proxy in front sets X-Forwarded-For/-Host/-Proto. */
export function trustProxy(env: Record<string, string | undefined> = process.env): boolean {
  return env.WEB_TRUST_PROXY === "1";
}

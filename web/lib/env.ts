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

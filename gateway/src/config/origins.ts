import { ConfigError } from "./errors.js";
import { parseOrigins } from "./parse.js";
import type { Env } from "./schema.js";

/** The spellings of this machine's own loopback address a browser may put in `Origin`. */
const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"] as const;

/** True for `localhost`, `127.0.0.1` and `[::1]` (as `URL.hostname` spells them). */
export function isLoopbackHost(hostname: string): boolean {
  return (LOOPBACK_HOSTS as readonly string[]).includes(hostname.toLowerCase());
}

/**
 * `PUBLIC_URL`, where people open the app: an absolute http(s) URL naming an origin only
 * (`scheme://host[:port]`, a trailing slash allowed). Returned as the browser spells that origin
 * in `Origin` (lower-case host, default port dropped, IPv6 literal compressed), so it compares
 * equal to what better-auth and the CSRF check receive.
 * @throws ConfigError naming `variable` for another scheme, a path, a query, a fragment or
 *   credentials (the web app is served at the root of its origin).
 */
export function parsePublicUrl(variable: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      variable,
      `config error: ${variable} must be the address people open the app at, like http://localhost:3000 or https://chat.example.org (got "${raw}")`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(variable, `config error: ${variable} must use http or https ("${raw}")`);
  }
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/") {
    throw new ConfigError(
      variable,
      `config error: ${variable} must be an origin only, scheme://host[:port], without a path, query or credentials (got "${raw}"; did you mean "${url.origin}"?)`,
    );
  }
  return url.origin;
}

/**
 * The origins a browser may show for the app at `publicUrl` (an origin from
 * {@link parsePublicUrl}): that origin, and when its host is a loopback name, the other loopback
 * spellings on the same scheme and port too (`http://localhost:3000` and
 * `http://127.0.0.1:3000` are the same server, whichever the operator typed). A non-loopback
 * origin gets no companions: trusting `http://localhost:3000` for a server at
 * `https://chat.example.org` would trust whatever runs on each visitor's own port 3000.
 */
export function publicOrigins(publicUrl: string): string[] {
  const url = new URL(publicUrl);
  if (!isLoopbackHost(url.hostname)) return [url.origin];
  const others = LOOPBACK_HOSTS.filter((host) => host !== url.hostname).map((host) => {
    const alias = new URL(url.origin);
    alias.hostname = host;
    return alias.origin;
  });
  return [url.origin, ...others];
}

/** The origin settings of the gateway, all derived from `PUBLIC_URL`. */
export interface OriginsConfig {
  /** Where people open the app (the web app's origin, no trailing slash). */
  publicUrl: string;
  /**
   * Origins whose browser requests are trusted: CORS with credentials, the CSRF check of
   * cookie-authenticated changes, better-auth's origin check. {@link publicOrigins} of
   * `publicUrl`, then `CORS_ORIGINS`; exact origins, never a wildcard.
   */
  trustedOrigins: string[];
}

/**
 * Derives {@link OriginsConfig} from `PUBLIC_URL` (default http://localhost:3000) and the extra
 * origins of `CORS_ORIGINS`. `WEB_ORIGIN`, its old name, still works with a warning: alone it is
 * read as `PUBLIC_URL`; beside a different `PUBLIC_URL` it is one more trusted origin.
 */
export function originsConfig(
  env: Pick<Env, "PUBLIC_URL" | "WEB_ORIGIN" | "CORS_ORIGINS">,
  warnings: string[],
  publicUrlGiven: boolean,
): OriginsConfig {
  let publicUrl = parsePublicUrl("PUBLIC_URL", env.PUBLIC_URL);
  const extra: string[] = [];
  if (env.WEB_ORIGIN !== undefined) {
    const webOrigin = parsePublicUrl("WEB_ORIGIN", env.WEB_ORIGIN);
    if (!publicUrlGiven) {
      publicUrl = webOrigin;
      warnings.push(`WEB_ORIGIN is deprecated: rename it to PUBLIC_URL (${webOrigin})`);
    } else if (webOrigin === publicUrl) {
      warnings.push("WEB_ORIGIN is deprecated and equals PUBLIC_URL: remove it");
    } else {
      extra.push(webOrigin);
      warnings.push(
        `WEB_ORIGIN is deprecated: ${webOrigin} is trusted as an extra origin; list it in CORS_ORIGINS instead`,
      );
    }
  }
  if (env.CORS_ORIGINS !== undefined) extra.push(...parseOrigins("CORS_ORIGINS", env.CORS_ORIGINS));
  return { publicUrl, trustedOrigins: [...new Set([...publicOrigins(publicUrl), ...extra])] };
}

import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError } from "./errors.js";
import type { Env } from "./schema.js";
import { isPlaceholder, readSecretFile } from "./secrets.js";
import type {
  MailConfig,
  OAuthClient,
  OAuthConfig,
  TlsConfig,
  UpstreamTlsConfig,
} from "./types.js";

export function parseUrl(variable: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(variable, `config error: ${variable} contains an invalid URL "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(variable, `config error: ${variable} must use http or https ("${raw}")`);
  }
  return raw.replace(/\/+$/, "");
}

export function parseRedisUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return raw;
  } catch {
    // fall through
  }
  throw new ConfigError("REDIS_URL", `config error: REDIS_URL must be a redis:// URL ("${raw}")`);
}

/** Accepts postgres:// and postgresql:// URLs; the message never repeats the URL (password). */
export function parseDatabaseUrl(raw: string): string {
  let protocol = "";
  try {
    protocol = new URL(raw).protocol;
  } catch {
    // fall through
  }
  if (protocol === "postgres:" || protocol === "postgresql:") return raw;
  throw new ConfigError(
    "DATABASE_URL",
    "config error: DATABASE_URL must be a postgres:// or postgresql:// URL (unset it for SQLite)",
  );
}

function readPem(variable: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      variable,
      `config error: ${variable} cannot be read: ${path} (${reason})`,
    );
  }
}

/** Both TLS files or neither; each must be readable (read once, here). */
export function tlsConfig(env: Env): TlsConfig | undefined {
  const certFile = env.TLS_CERT_FILE;
  const keyFile = env.TLS_KEY_FILE;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    const missing = certFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE";
    throw new ConfigError(
      missing,
      `config error: set ${missing} too (TLS_CERT_FILE and TLS_KEY_FILE go together)`,
    );
  }
  const cert = readPem("TLS_CERT_FILE", certFile);
  const key = readPem("TLS_KEY_FILE", keyFile);
  // Fail here, in one line, rather than with a stack trace when the HTTPS server is created.
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(
      "TLS_CERT_FILE",
      `config error: TLS_CERT_FILE and TLS_KEY_FILE are not a usable certificate and key (${(err as Error).message})`,
    );
  }
  return { certFile, keyFile, cert, key };
}

/**
 * The CA and client certificate for https:// llm-servers. The client key is a secret: the
 * permission rule of NAME_FILE applies (readable by its owner only, unless on a read-only
 * mount). Set for no https:// URL at all, they are a mistake (TLS is not on).
 */
export function upstreamTlsConfig(env: Env, urls: readonly string[]): UpstreamTlsConfig {
  const caFile = env.LLM_SERVER_CA_FILE;
  const certFile = env.LLM_SERVER_CLIENT_CERT_FILE;
  const keyFile = env.LLM_SERVER_CLIENT_KEY_FILE;
  if (caFile === undefined && certFile === undefined && keyFile === undefined) {
    return { ca: undefined, cert: undefined, key: undefined };
  }
  const given = caFile !== undefined ? "LLM_SERVER_CA_FILE" : "LLM_SERVER_CLIENT_CERT_FILE";
  if (!urls.some((u) => u.startsWith("https://"))) {
    throw new ConfigError(
      given,
      `config error: ${given} is set but no LLM_SERVER_URLS entry is https:// (TLS to the llm-servers is off)`,
    );
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing =
      certFile === undefined ? "LLM_SERVER_CLIENT_CERT_FILE" : "LLM_SERVER_CLIENT_KEY_FILE";
    throw new ConfigError(
      missing,
      `config error: set ${missing} too (LLM_SERVER_CLIENT_CERT_FILE and LLM_SERVER_CLIENT_KEY_FILE go together)`,
    );
  }
  const ca = caFile === undefined ? undefined : readPem("LLM_SERVER_CA_FILE", caFile);
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch {
      throw new ConfigError(
        "LLM_SERVER_CA_FILE",
        `config error: LLM_SERVER_CA_FILE holds no PEM certificate: ${caFile}`,
      );
    }
  }
  const cert =
    certFile === undefined ? undefined : readPem("LLM_SERVER_CLIENT_CERT_FILE", certFile);
  const key =
    keyFile === undefined ? undefined : readSecretFile("LLM_SERVER_CLIENT_KEY_FILE", keyFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(
      "LLM_SERVER_CLIENT_CERT_FILE",
      `config error: LLM_SERVER_CLIENT_CERT_FILE and LLM_SERVER_CLIENT_KEY_FILE are not a usable certificate and key (${(err as Error).message})`,
    );
  }
  return { ca, cert, key };
}

function pair(
  env: Env,
  idVar: "OIDC_CLIENT_ID" | "GITHUB_CLIENT_ID" | "GOOGLE_CLIENT_ID",
  secretVar: "OIDC_CLIENT_SECRET" | "GITHUB_CLIENT_SECRET" | "GOOGLE_CLIENT_SECRET",
): OAuthClient | undefined {
  const clientId = env[idVar];
  const clientSecret = env[secretVar];
  if (clientId === undefined && clientSecret === undefined) return undefined;
  if (clientId === undefined) throw new ConfigError(idVar, `config error: set ${idVar}`);
  if (clientSecret === undefined || isPlaceholder(clientSecret)) {
    throw new ConfigError(secretVar, `config error: set ${secretVar}`);
  }
  return { clientId, clientSecret };
}

export function oauthConfig(env: Env): OAuthConfig {
  const oidcClient = pair(env, "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET");
  if (oidcClient && !env.OIDC_ISSUER) {
    throw new ConfigError("OIDC_ISSUER", "config error: set OIDC_ISSUER (the issuer URL)");
  }
  return {
    oidc:
      oidcClient && env.OIDC_ISSUER
        ? { ...oidcClient, issuer: parseUrl("OIDC_ISSUER", env.OIDC_ISSUER), name: env.OIDC_NAME }
        : undefined,
    github: pair(env, "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"),
    google: pair(env, "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"),
  };
}

/**
 * A comma-separated list of exact origins (`scheme://host[:port]`), as browsers send them
 * in `Origin`; a wildcard, a path or a query is refused.
 */
export function parseOrigins(variable: string, raw: string): string[] {
  const origins = raw
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (
      !url ||
      (url.protocol !== "http:" && url.protocol !== "https:") ||
      url.origin !== origin.replace(/\/+$/, "")
    ) {
      throw new ConfigError(
        variable,
        `config error: ${variable} must list exact origins like https://chat.example.org ("${origin}")`,
      );
    }
  }
  return [...new Set(origins.map((o) => new URL(o).origin))];
}

/**
 * The SMTP settings: `smtp://` (STARTTLS when the server offers it) or `smtps://` (TLS from the
 * first byte), user and password in the URL or the password in SMTP_PASSWORD. Messages never
 * repeat the URL (it may hold the password). None when SMTP_URL is unset.
 */
export function mailConfig(env: {
  SMTP_URL?: string | undefined;
  SMTP_PASSWORD?: string | undefined;
  MAIL_FROM?: string | undefined;
}): MailConfig | undefined {
  if (!env.SMTP_URL) {
    if (env.SMTP_PASSWORD) {
      throw new ConfigError(
        "SMTP_PASSWORD",
        "config error: SMTP_PASSWORD is set but SMTP_URL is not",
      );
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(env.SMTP_URL);
  } catch {
    throw new ConfigError(
      "SMTP_URL",
      "config error: SMTP_URL must be a URL like smtp://user@mail.example.com:587",
    );
  }
  if ((url.protocol !== "smtp:" && url.protocol !== "smtps:") || url.hostname === "") {
    throw new ConfigError(
      "SMTP_URL",
      "config error: SMTP_URL must be an smtp:// or smtps:// URL with a host",
    );
  }
  if (url.password && env.SMTP_PASSWORD) {
    throw new ConfigError(
      "SMTP_PASSWORD",
      "config error: SMTP_PASSWORD is set and SMTP_URL holds a password too: keep one",
    );
  }
  const secure = url.protocol === "smtps:";
  const user = decodeURIComponent(url.username);
  const password = url.password ? decodeURIComponent(url.password) : env.SMTP_PASSWORD;
  const from = env.MAIL_FROM ?? (user.includes("@") ? user : undefined);
  if (!from || !/^[^\s@<>]+@[^\s@<>]+$|<[^\s@<>]+@[^\s@<>]+>\s*$/.test(from)) {
    throw new ConfigError(
      "MAIL_FROM",
      'config error: MAIL_FROM must be the sender address of the mails, e.g. "LLM stack <llm@example.com>"',
    );
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    user: user || undefined,
    password: user ? password : undefined,
    from,
  };
}

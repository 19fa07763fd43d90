import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";
import { Ajv } from "ajv";
import { type Static, Type } from "typebox";

/**
 * Schema of the environment variables the gateway reads.
 * Values arrive as strings; Ajv coerces numbers and fills defaults.
 */
// Runtime lists for error messages; `satisfies` keeps them in step with the schema.
const APP_ENVS = ["development", "test", "production"] as const satisfies readonly AppEnv[];
const LOG_LEVELS = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
] as const satisfies readonly LogLevel[];

export const EnvSchema = Type.Object({
  APP_ENV: Type.Union(
    [Type.Literal("development"), Type.Literal("test"), Type.Literal("production")],
    { default: "production" },
  ),
  GATEWAY_HOST: Type.String({ minLength: 1, default: "0.0.0.0" }),
  GATEWAY_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 4000 }),
  LLM_SERVER_URLS: Type.String({ minLength: 1, default: "http://127.0.0.1:8000" }),
  LLM_SERVER_TOKEN: Type.Optional(Type.String()),
  AUTH_SECRET: Type.Optional(Type.String()),
  DATABASE_PATH: Type.String({ minLength: 1, default: "./data/gateway.sqlite" }),
  WEB_ORIGIN: Type.String({ minLength: 1, default: "http://localhost:3000" }),
  PUBLIC_URL: Type.Optional(Type.String({ minLength: 1 })),
  TRUST_PROXY: Type.String({ default: "loopback" }),
  ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 3 })),
  REQUIRE_ADMIN_2FA: Type.Boolean({ default: false }),
  LLM_FIRST_TOKEN_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 120_000 }),
  LLM_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 60_000 }),
  SSE_HEARTBEAT_MS: Type.Integer({ minimum: 1, default: 15_000 }),
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),
  LIMIT_USER_REQUESTS_PER_MINUTE: Type.Integer({ minimum: 0, default: 60 }),
  LIMIT_USER_TOKENS_PER_DAY: Type.Integer({ minimum: 0, default: 200_000 }),
  LIMIT_USER_CONCURRENT_STREAMS: Type.Integer({ minimum: 0, default: 4 }),
  LIMIT_USER_MAX_TOKENS: Type.Integer({ minimum: 0, default: 4096 }),
  LIMIT_ADMIN_REQUESTS_PER_MINUTE: Type.Integer({ minimum: 0, default: 0 }),
  LIMIT_ADMIN_TOKENS_PER_DAY: Type.Integer({ minimum: 0, default: 0 }),
  LIMIT_ADMIN_CONCURRENT_STREAMS: Type.Integer({ minimum: 0, default: 0 }),
  LIMIT_ADMIN_MAX_TOKENS: Type.Integer({ minimum: 0, default: 0 }),
  LLM_HEALTH_INTERVAL_MS: Type.Integer({ minimum: 50, default: 5000 }),
  LLM_EJECT_AFTER_FAILURES: Type.Integer({ minimum: 1, default: 3 }),
  LLM_READMIT_AFTER_CHECKS: Type.Integer({ minimum: 1, default: 2 }),
  LLM_SERVER_MAX_OUTSTANDING: Type.Integer({ minimum: 0, default: 0 }),
  GATEWAY_QUEUE_MAX: Type.Integer({ minimum: 0, default: 100 }),
  GATEWAY_QUEUE_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 30_000 }),
  CACHE_ENABLED: Type.Boolean({ default: true }),
  CACHE_SCOPE: Type.Union([Type.Literal("user"), Type.Literal("shared")], { default: "user" }),
  CACHE_TTL_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  CACHE_MAX_ENTRIES: Type.Integer({ minimum: 1, default: 1000 }),
  CACHE_MAX_ENTRY_BYTES: Type.Integer({ minimum: 1, default: 262_144 }),
  CACHE_HITS_COST_QUOTA: Type.Boolean({ default: false }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_CLIENT_ID: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_NAME: Type.String({ minLength: 1, default: "Single sign-on" }),
  GITHUB_CLIENT_ID: Type.Optional(Type.String({ minLength: 1 })),
  GITHUB_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_CLIENT_ID: Type.Optional(Type.String({ minLength: 1 })),
  GOOGLE_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union(
    [
      Type.Literal("fatal"),
      Type.Literal("error"),
      Type.Literal("warn"),
      Type.Literal("info"),
      Type.Literal("debug"),
      Type.Literal("trace"),
      Type.Literal("silent"),
    ],
    { default: "info" },
  ),
});

type Env = Static<typeof EnvSchema>;

export type AppEnv = Env["APP_ENV"];
export type LogLevel = Env["LOG_LEVEL"];

export interface Config {
  appEnv: AppEnv;
  host: string;
  port: number;
  /** Base URLs of the llm-server instances, without trailing slash. */
  llmServerUrls: string[];
  llmServerToken: string;
  authSecret: string;
  databasePath: string;
  webOrigin: string;
  /** Public base URL of the auth endpoints (cookies are Secure when it is https). */
  publicUrl: string;
  /** Proxies whose X-Forwarded-For is believed (proxy-addr syntax), or false. */
  trustProxy: string | false;
  /** The account with this email becomes admin at sign-up (besides the very first account). */
  adminEmail: string | undefined;
  requireAdmin2fa: boolean;
  firstTokenTimeoutMs: number;
  idleTimeoutMs: number;
  heartbeatMs: number;
  oauth: OAuthConfig;
  /** Shared counters and cache (several gateway instances); process memory when unset. */
  redisUrl: string | undefined;
  /** Default limits per role; 0 means no limit. */
  limits: Record<Role, Limits>;
  balancer: BalancerConfig;
  cache: CacheConfig;
  /** Bearer token for /metrics; without it only loopback clients may scrape. */
  metricsToken: string | undefined;
  logLevel: LogLevel;
  /** Non-fatal notes produced while loading (e.g. generated ephemeral secrets). */
  warnings: string[];
}

export type Role = "admin" | "user";

/** Per-user (or per-API-key) limits; 0 means no limit. */
export interface Limits {
  requestsPerMinute: number;
  tokensPerDay: number;
  concurrentStreams: number;
  maxTokens: number;
}

export interface BalancerConfig {
  healthIntervalMs: number;
  ejectAfterFailures: number;
  readmitAfterChecks: number;
  /** In-flight requests per server before it counts as saturated; 0 = 2 × its max_running. */
  maxOutstanding: number;
  queueMax: number;
  queueTimeoutMs: number;
}

export interface CacheConfig {
  enabled: boolean;
  scope: "user" | "shared";
  ttlSeconds: number;
  maxEntries: number;
  maxEntryBytes: number;
  hitsCostQuota: boolean;
}

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface OAuthConfig {
  oidc: (OAuthClient & { issuer: string; name: string }) | undefined;
  github: OAuthClient | undefined;
  google: OAuthClient | undefined;
}

/** Thrown for any invalid configuration; `message` is one line, ready to print. */
export class ConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(message);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

const PLACEHOLDERS = new Set([
  "",
  "changeme",
  "change-me",
  "change_me",
  "change me",
  "changethis",
  "change-this",
  "replaceme",
  "replace-me",
  "replace_me",
  "placeholder",
  "secret",
  "password",
  "token",
  "todo",
  "tbd",
  "xxx",
  "dummy",
  "example",
  "your-secret",
  "your-secret-here",
  "your-token",
  "your-token-here",
]);

/** True when the value looks like a template value rather than a real secret. */
export function isPlaceholder(value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim().toLowerCase();
  if (PLACEHOLDERS.has(v)) return true;
  if (/^<.*>$/.test(v) || /^\$\{.*\}$/.test(v)) return true;
  if (/^x+$/.test(v)) return true;
  return v.includes("changeme") || v.includes("change-me") || v.includes("placeholder");
}

interface SecretSpec {
  name: "AUTH_SECRET" | "LLM_SERVER_TOKEN";
  minLength: number;
  hint: string;
}

const SECRETS: SecretSpec[] = [
  { name: "AUTH_SECRET", minLength: 32, hint: "a random string of at least 32 characters" },
  {
    name: "LLM_SERVER_TOKEN",
    minLength: 16,
    hint: "the bearer token the llm-server expects, at least 16 characters",
  },
];

const CHOICES: Record<string, readonly string[]> = {
  APP_ENV: APP_ENVS,
  LOG_LEVEL: LOG_LEVELS,
  CACHE_SCOPE: ["user", "shared"],
};

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false, strict: false });
const validateEnv = ajv.compile<Env>(EnvSchema);

/** Reads `.env` from the working directory if present; real env vars win. */
function withDotEnv(env: NodeJS.ProcessEnv, dotEnvPath?: string): NodeJS.ProcessEnv {
  const path = dotEnvPath ?? resolve(process.cwd(), ".env");
  if (!existsSync(path)) return env;
  const fromFile = parseEnv(readFileSync(path, "utf8"));
  return { ...fromFile, ...env };
}

function parseUrl(variable: string, raw: string): string {
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

function parseRedisUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.protocol === "redis:" || url.protocol === "rediss:") return raw;
  } catch {
    // fall through
  }
  throw new ConfigError("REDIS_URL", `config error: REDIS_URL must be a redis:// URL ("${raw}")`);
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

function oauthConfig(env: Env): OAuthConfig {
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
 * Validates the environment and returns the typed gateway configuration.
 * When called with the real `process.env` (the default), a `.env` file in the
 * working directory is merged in underneath it.
 * @throws ConfigError with a one-line message naming the variable to fix.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, dotEnvPath?: string): Config {
  const source = env === process.env ? withDotEnv(env, dotEnvPath) : env;

  // Only copy the variables we know about, dropping empty strings so defaults apply.
  const input: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key];
    if (value !== undefined && value.trim() !== "") input[key] = value.trim();
  }

  if (!validateEnv(input)) {
    const err = validateEnv.errors?.[0];
    const variable = err?.instancePath.replace(/^\//, "") || "environment";
    const allowed = CHOICES[variable];
    const detail = allowed
      ? `must be one of ${allowed.join("|")} (got "${input[variable] ?? ""}")`
      : `${err?.message ?? "is invalid"} (got "${input[variable] ?? ""}")`;
    throw new ConfigError(variable, `config error: ${variable} ${detail}`);
  }
  const parsed = input as unknown as Env;

  const relaxed = parsed.APP_ENV === "development" || parsed.APP_ENV === "test";
  const warnings: string[] = [];
  const secrets: Record<SecretSpec["name"], string> = { AUTH_SECRET: "", LLM_SERVER_TOKEN: "" };
  for (const spec of SECRETS) {
    const value = parsed[spec.name];
    const bad = value === undefined || isPlaceholder(value) || value.length < spec.minLength;
    if (!bad) {
      secrets[spec.name] = value;
    } else if (relaxed) {
      secrets[spec.name] = randomBytes(32).toString("base64url");
      warnings.push(
        `${spec.name} is not set; using an ephemeral random value (APP_ENV=${parsed.APP_ENV})`,
      );
    } else {
      throw new ConfigError(spec.name, `config error: set ${spec.name} (${spec.hint})`);
    }
  }

  const llmServerUrls = parsed.LLM_SERVER_URLS.split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "")
    .map((u) => parseUrl("LLM_SERVER_URLS", u));
  if (llmServerUrls.length === 0) {
    throw new ConfigError("LLM_SERVER_URLS", "config error: set LLM_SERVER_URLS (comma-separated)");
  }

  const webOrigin = parseUrl("WEB_ORIGIN", parsed.WEB_ORIGIN);
  return {
    appEnv: parsed.APP_ENV,
    host: parsed.GATEWAY_HOST,
    port: parsed.GATEWAY_PORT,
    llmServerUrls,
    llmServerToken: secrets.LLM_SERVER_TOKEN,
    authSecret: secrets.AUTH_SECRET,
    databasePath: parsed.DATABASE_PATH,
    webOrigin,
    publicUrl: parsed.PUBLIC_URL ? parseUrl("PUBLIC_URL", parsed.PUBLIC_URL) : webOrigin,
    trustProxy: ["", "false", "none"].includes(parsed.TRUST_PROXY) ? false : parsed.TRUST_PROXY,
    adminEmail: parsed.ADMIN_EMAIL?.toLowerCase(),
    requireAdmin2fa: parsed.REQUIRE_ADMIN_2FA,
    firstTokenTimeoutMs: parsed.LLM_FIRST_TOKEN_TIMEOUT_MS,
    idleTimeoutMs: parsed.LLM_IDLE_TIMEOUT_MS,
    heartbeatMs: parsed.SSE_HEARTBEAT_MS,
    oauth: oauthConfig(parsed),
    redisUrl: parsed.REDIS_URL ? parseRedisUrl(parsed.REDIS_URL) : undefined,
    limits: {
      user: {
        requestsPerMinute: parsed.LIMIT_USER_REQUESTS_PER_MINUTE,
        tokensPerDay: parsed.LIMIT_USER_TOKENS_PER_DAY,
        concurrentStreams: parsed.LIMIT_USER_CONCURRENT_STREAMS,
        maxTokens: parsed.LIMIT_USER_MAX_TOKENS,
      },
      admin: {
        requestsPerMinute: parsed.LIMIT_ADMIN_REQUESTS_PER_MINUTE,
        tokensPerDay: parsed.LIMIT_ADMIN_TOKENS_PER_DAY,
        concurrentStreams: parsed.LIMIT_ADMIN_CONCURRENT_STREAMS,
        maxTokens: parsed.LIMIT_ADMIN_MAX_TOKENS,
      },
    },
    balancer: {
      healthIntervalMs: parsed.LLM_HEALTH_INTERVAL_MS,
      ejectAfterFailures: parsed.LLM_EJECT_AFTER_FAILURES,
      readmitAfterChecks: parsed.LLM_READMIT_AFTER_CHECKS,
      maxOutstanding: parsed.LLM_SERVER_MAX_OUTSTANDING,
      queueMax: parsed.GATEWAY_QUEUE_MAX,
      queueTimeoutMs: parsed.GATEWAY_QUEUE_TIMEOUT_MS,
    },
    cache: {
      enabled: parsed.CACHE_ENABLED,
      scope: parsed.CACHE_SCOPE,
      ttlSeconds: parsed.CACHE_TTL_SECONDS,
      maxEntries: parsed.CACHE_MAX_ENTRIES,
      maxEntryBytes: parsed.CACHE_MAX_ENTRY_BYTES,
      hitsCostQuota: parsed.CACHE_HITS_COST_QUOTA,
    },
    metricsToken: parsed.METRICS_TOKEN,
    logLevel: parsed.LOG_LEVEL,
    warnings,
  };
}

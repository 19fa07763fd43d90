import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";
import { Ajv } from "ajv";
import { ConfigError } from "./config/errors.js";
import { originsConfig } from "./config/origins.js";
import {
  mailConfig,
  oauthConfig,
  parseDatabaseUrl,
  parseRedisUrl,
  parseUrl,
  tlsConfig,
  upstreamTlsConfig,
} from "./config/parse.js";
import { loadRoutingFile } from "./config/routing-file.js";
import { CHOICES, type Env, EnvSchema } from "./config/schema.js";
import { isPlaceholder, SECRETS, type SecretSpec, withSecretFiles } from "./config/secrets.js";
import type { Config } from "./config/types.js";

export { ConfigError } from "./config/errors.js";
export {
  type AppEnv,
  EnvSchema,
  type LogLevel,
  SIGNUP_MODES,
  type SignupMode,
} from "./config/schema.js";
export { isPlaceholder } from "./config/secrets.js";
export type * from "./config/types.js";

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false, strict: false });
const validateEnv = ajv.compile<Env>(EnvSchema);

/** Reads `.env` from the working directory if present; real env vars win. */
function withDotEnv(env: NodeJS.ProcessEnv, dotEnvPath?: string): NodeJS.ProcessEnv {
  const path = dotEnvPath ?? resolve(process.cwd(), ".env");
  if (!existsSync(path)) return env;
  const fromFile = parseEnv(readFileSync(path, "utf8"));
  return { ...fromFile, ...env };
}

/**
 * Validates the environment and returns the typed gateway configuration.
 * When called with the real `process.env` (the default), a `.env` file in the
 * working directory is merged in underneath it.
 * @throws ConfigError with a one-line message naming the variable to fix.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, dotEnvPath?: string): Config {
  const source = withSecretFiles(env === process.env ? withDotEnv(env, dotEnvPath) : env);

  const { parsed, publicUrlGiven } = validatedEnv(source);
  const warnings: string[] = [];
  const secrets = secretsOf(parsed, warnings);

  const llmServerUrls = parsed.LLM_SERVER_URLS.split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "")
    .map((u) => parseUrl("LLM_SERVER_URLS", u));
  if (llmServerUrls.length === 0) {
    throw new ConfigError("LLM_SERVER_URLS", "config error: set LLM_SERVER_URLS (comma-separated)");
  }

  const models = parsed.GATEWAY_MODELS_FILE
    ? loadRoutingFile(parsed.GATEWAY_MODELS_FILE, source)
    : undefined;
  // TLS settings for llm-servers apply to those of the routing file when there is one.
  const tlsUrls = models
    ? models.models.flatMap((m) =>
        m.upstreams.filter((u) => u.kind === "llm-server").map((u) => u.url),
      )
    : llmServerUrls;
  const origins = originsConfig(parsed, warnings, publicUrlGiven);
  const mail = mailConfig(parsed);
  if (parsed.REQUIRE_EMAIL_VERIFICATION && !mail) {
    throw new ConfigError(
      "REQUIRE_EMAIL_VERIFICATION",
      "config error: REQUIRE_EMAIL_VERIFICATION needs SMTP_URL and MAIL_FROM (the link is mailed)",
    );
  }
  if (parsed.ADMIN_EMAIL !== undefined) {
    warnings.push(
      "ADMIN_EMAIL is ignored: signing up never makes an admin. Create the first admin with the " +
        "setup link the gateway prints at start, or gateway/bin/admin create-user --role admin",
    );
  }
  return {
    appEnv: parsed.APP_ENV,
    host: parsed.GATEWAY_HOST,
    port: parsed.GATEWAY_PORT,
    llmServerUrls,
    llmServerToken: secrets.LLM_SERVER_TOKEN,
    models,
    upstreamTls: upstreamTlsConfig(parsed, tlsUrls),
    authSecret: secrets.AUTH_SECRET,
    databasePath: parsed.DATABASE_PATH,
    databaseUrl: parsed.DATABASE_URL ? parseDatabaseUrl(parsed.DATABASE_URL) : undefined,
    tls: tlsConfig(parsed),
    ...origins,
    trustProxy: ["", "false", "none"].includes(parsed.TRUST_PROXY) ? false : parsed.TRUST_PROXY,
    requireAdmin2fa: parsed.REQUIRE_ADMIN_2FA,
    signupMode: parsed.SIGNUP_MODE,
    invitationTtlMs: parsed.INVITATION_TTL_HOURS * 3_600_000,
    mail,
    requireEmailVerification: parsed.REQUIRE_EMAIL_VERIFICATION,
    firstTokenTimeoutMs: parsed.LLM_FIRST_TOKEN_TIMEOUT_MS,
    idleTimeoutMs: parsed.LLM_IDLE_TIMEOUT_MS,
    headersTimeoutMs: parsed.LLM_HEADERS_TIMEOUT_MS,
    shutdownDrainMs: parsed.SHUTDOWN_DRAIN_MS,
    heartbeatMs: parsed.SSE_HEARTBEAT_MS,
    oauth: oauthConfig(parsed),
    redisUrl: parsed.REDIS_URL ? parseRedisUrl(parsed.REDIS_URL) : undefined,
    limits: roleLimits(parsed),
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
    authCacheTtlMs: parsed.AUTH_CACHE_TTL_MS,
    metricsToken: parsed.METRICS_TOKEN,
    logLevel: parsed.LOG_LEVEL,
    warnings,
  };
}

/** The known variables of `source` (empty ones dropped so defaults apply), validated. */
function validatedEnv(source: NodeJS.ProcessEnv): { parsed: Env; publicUrlGiven: boolean } {
  // Only copy the variables we know about, dropping empty strings so defaults apply.
  const input: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key];
    if (value !== undefined && value.trim() !== "") input[key] = value.trim();
  }

  // Before validation, which fills in the defaults.
  const publicUrlGiven = input.PUBLIC_URL !== undefined;
  if (!validateEnv(input)) {
    const err = validateEnv.errors?.[0];
    const variable = err?.instancePath.replace(/^\//, "") || "environment";
    const allowed = CHOICES[variable];
    const detail = allowed
      ? `must be one of ${allowed.join("|")} (got "${input[variable] ?? ""}")`
      : `${err?.message ?? "is invalid"} (got "${input[variable] ?? ""}")`;
    throw new ConfigError(variable, `config error: ${variable} ${detail}`);
  }
  return { parsed: input as unknown as Env, publicUrlGiven };
}

/**
 * AUTH_SECRET and LLM_SERVER_TOKEN: missing or placeholder ones stop a production start; in
 * development and test they are replaced by an ephemeral random value (with a warning).
 */
function secretsOf(parsed: Env, warnings: string[]): Record<SecretSpec["name"], string> {
  const relaxed = parsed.APP_ENV === "development" || parsed.APP_ENV === "test";
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
  return secrets;
}

/** The default limits of each role (LIMIT_*). */
function roleLimits(parsed: Env): Config["limits"] {
  return {
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
  };
}

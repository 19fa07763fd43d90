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

/** Where people open the app when PUBLIC_URL is not set: the web app on this machine. */
export const DEFAULT_PUBLIC_URL = "http://localhost:3000";

export const EnvSchema = Type.Object({
  APP_ENV: Type.Union(
    [Type.Literal("development"), Type.Literal("test"), Type.Literal("production")],
    { default: "production" },
  ),
  GATEWAY_HOST: Type.String({ minLength: 1, default: "0.0.0.0" }),
  GATEWAY_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 4000 }),
  LLM_SERVER_URLS: Type.String({ minLength: 1, default: "http://127.0.0.1:8000" }),
  LLM_SERVER_TOKEN: Type.Optional(Type.String()),
  GATEWAY_MODELS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LLM_SERVER_CA_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LLM_SERVER_CLIENT_CERT_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LLM_SERVER_CLIENT_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  AUTH_SECRET: Type.Optional(Type.String()),
  DATABASE_PATH: Type.String({ minLength: 1, default: "./data/gateway.sqlite" }),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  TLS_CERT_FILE: Type.Optional(Type.String({ minLength: 1 })),
  TLS_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  PUBLIC_URL: Type.String({ minLength: 1, default: DEFAULT_PUBLIC_URL }),
  /** Deprecated: the old name of PUBLIC_URL (see config/origins.ts). */
  WEB_ORIGIN: Type.Optional(Type.String({ minLength: 1 })),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  TRUST_PROXY: Type.String({ default: "loopback" }),
  ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 3 })),
  REQUIRE_ADMIN_2FA: Type.Boolean({ default: false }),
  SIGNUP_MODE: Type.Union(
    [
      Type.Literal("open"),
      Type.Literal("approval"),
      Type.Literal("invite"),
      Type.Literal("closed"),
    ],
    { default: "open" },
  ),
  INVITATION_TTL_HOURS: Type.Integer({ minimum: 1, maximum: 24 * 90, default: 168 }),
  SMTP_URL: Type.Optional(Type.String({ minLength: 1 })),
  SMTP_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  MAIL_FROM: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
  REQUIRE_EMAIL_VERIFICATION: Type.Boolean({ default: false }),
  LLM_FIRST_TOKEN_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 120_000 }),
  LLM_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 60_000 }),
  LLM_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10_000 }),
  SHUTDOWN_DRAIN_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 12_000 }),
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
  AUTH_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 10_000, default: 2000 }),
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

export type Env = Static<typeof EnvSchema>;

export type AppEnv = Env["APP_ENV"];
export type LogLevel = Env["LOG_LEVEL"];
export type SignupMode = Env["SIGNUP_MODE"];

/** The sign-up policies, in the order the admin page lists them. */
export const SIGNUP_MODES = [
  "open",
  "approval",
  "invite",
  "closed",
] as const satisfies readonly SignupMode[];

export const CHOICES: Record<string, readonly string[]> = {
  APP_ENV: APP_ENVS,
  LOG_LEVEL: LOG_LEVELS,
  CACHE_SCOPE: ["user", "shared"],
  SIGNUP_MODE: SIGNUP_MODES,
};

import type { Role } from "../schemas.js";
import type { RoutingConfig } from "./routing-file.js";
import type { AppEnv, LogLevel, SignupMode } from "./schema.js";

export interface Config {
  appEnv: AppEnv;
  host: string;
  port: number;
  /** Base URLs of the llm-server instances, without trailing slash. */
  llmServerUrls: string[];
  llmServerToken: string;
  /**
   * GATEWAY_MODELS_FILE: public model names, each with its pool of upstreams (llm-servers or
   * OpenAI-compatible servers) and fallbacks. Unset: one pool of `llmServerUrls`, the
   * client's `model` sent as is.
   */
  models?: RoutingConfig | undefined;
  /** TLS towards https:// llm-servers: the CA to check them against, the client certificate. */
  upstreamTls: UpstreamTlsConfig;
  authSecret: string;
  /** SQLite file; used when `databaseUrl` is unset. */
  databasePath: string;
  /** PostgreSQL connection URL (postgres:// or postgresql://); SQLite when unset. */
  databaseUrl: string | undefined;
  /** Certificate and key (PEM) to serve HTTPS directly; plain HTTP when unset. */
  tls: TlsConfig | undefined;
  /**
   * Where people open the app (PUBLIC_URL: the web app's origin, no trailing slash): base of
   * better-auth's URLs (reset and setup links, OAuth callbacks); cookies are Secure and HSTS is
   * sent when it is https.
   */
  publicUrl: string;
  /**
   * Origins whose browser requests are trusted (CORS with credentials, the CSRF check,
   * better-auth's origin check): PUBLIC_URL (with the other loopback spellings when it is
   * loopback) and CORS_ORIGINS; exact origins, never a wildcard.
   */
  trustedOrigins: string[];
  /** Proxies whose X-Forwarded-For is believed (proxy-addr syntax), or false. */
  trustProxy: string | false;
  requireAdmin2fa: boolean;
  /**
   * Who may create an account, until an admin changes it on the admin page (the setting
   * stored in the database wins): open, approval (pending until approved), invite, closed.
   */
  signupMode: SignupMode;
  /** How long an invitation link works. */
  invitationTtlMs: number;
  /** Outgoing mail (password reset, verification, invitations); none: links only for admins. */
  mail: MailConfig | undefined;
  /** New email/password accounts must confirm their address (a mailed link) before signing in. */
  requireEmailVerification: boolean;
  firstTokenTimeoutMs: number;
  idleTimeoutMs: number;
  /**
   * Time allowed for the response headers of a call whose headers come at once (a stream,
   * a GET): a server that sends none is stalled, and the call moves to another server.
   */
  headersTimeoutMs: number;
  /**
   * How long a stopping gateway lets LLM calls in flight finish before it ends the rest
   * with an in-band error (then flushes usage and exits): below the supervisor's 20 s.
   */
  shutdownDrainMs: number;
  heartbeatMs: number;
  oauth: OAuthConfig;
  /** Shared counters and cache (several gateway instances); process memory when unset. */
  redisUrl: string | undefined;
  /** Default limits per role; 0 means no limit. */
  limits: Record<Role, Limits>;
  balancer: BalancerConfig;
  cache: CacheConfig;
  /**
   * How long a verified API key (with its user) and a subject's limit overrides are reused
   * in memory; changes made through this process's routes apply at once, others (the admin
   * CLI, another gateway instance) within this bound. 0 = no cache.
   */
  authCacheTtlMs: number;
  /** Bearer token for /metrics; without it only loopback clients may scrape. */
  metricsToken: string | undefined;
  logLevel: LogLevel;
  /** Non-fatal notes produced while loading (e.g. generated ephemeral secrets). */
  warnings: string[];
}

export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** The files' contents, read once at start-up. */
  cert: string;
  key: string;
}

/**
 * How the gateway connects to https:// llm-servers. The server's certificate is always
 * verified (chain and host name): against `ca` when set, else Node's public CAs.
 */
export interface UpstreamTlsConfig {
  /** PEM CA certificate(s) the llm-servers' certificates must chain to (replaces public CAs). */
  ca: string | undefined;
  /** PEM client certificate and key presented for mutual TLS; both or neither. */
  cert: string | undefined;
  key: string | undefined;
}

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

export interface MailConfig {
  host: string;
  port: number;
  /** TLS from the first byte (smtps://); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  user: string | undefined;
  password: string | undefined;
  /** The From address (MAIL_FROM). */
  from: string;
}

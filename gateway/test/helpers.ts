import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { expect } from "vitest";
import { type BuildOptions, buildApp } from "../src/app.js";
import { type Config, ConfigError } from "../src/config.js";
import { createPgDatabase, postgres } from "./postgres.js";

/** A complete, valid config for tests; override fields as needed. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    appEnv: "test",
    host: "127.0.0.1",
    port: 0,
    llmServerUrls: ["http://127.0.0.1:1"],
    llmServerToken: "test-llm-server-token-0123456789",
    upstreamTls: { ca: undefined, cert: undefined, key: undefined },
    authSecret: "test-auth-secret-0123456789abcdef0123456789",
    databasePath: ":memory:",
    databaseUrl: undefined,
    tls: undefined,
    publicUrl: "http://localhost:3000",
    trustedOrigins: ["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000"],
    trustProxy: "loopback",
    requireAdmin2fa: false,
    signupMode: "open",
    invitationTtlMs: 7 * 86_400_000,
    mail: undefined,
    requireEmailVerification: false,
    firstTokenTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    headersTimeoutMs: 5_000,
    shutdownDrainMs: 2_000,
    heartbeatMs: 15_000,
    oauth: { oidc: undefined, github: undefined, google: undefined },
    redisUrl: undefined,
    limits: {
      user: { requestsPerMinute: 0, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 0 },
      admin: { requestsPerMinute: 0, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 0 },
    },
    balancer: {
      healthIntervalMs: 60_000,
      ejectAfterFailures: 3,
      readmitAfterChecks: 2,
      maxOutstanding: 0,
      queueMax: 100,
      queueTimeoutMs: 5_000,
    },
    cache: {
      enabled: true,
      scope: "user",
      ttlSeconds: 3600,
      maxEntries: 1000,
      maxEntryBytes: 262_144,
      hitsCostQuota: false,
    },
    authCacheTtlMs: 2000,
    metricsToken: undefined,
    logLevel: "silent",
    warnings: [],
    ...overrides,
  };
}

/** The two storage engines the storage-relevant suites run against. */
export type DatabaseKind = "sqlite" | "postgres";
export const DATABASES: DatabaseKind[] = ["sqlite", "postgres"];

/**
 * Starts (or joins) the run's PostgreSQL; true when the PostgreSQL variants must be skipped
 * here (the reason is printed). Call it at the top level of a test file.
 */
export async function postgresMissing(): Promise<boolean> {
  return "reason" in (await postgres());
}

/**
 * Config fields for a fresh, empty database of that kind: SQLite in memory (or `sqlitePath`),
 * or a new database on the run's PostgreSQL (test/postgres.ts).
 */
export async function databaseConfig(
  kind: DatabaseKind,
  sqlitePath = ":memory:",
): Promise<Pick<Config, "databasePath" | "databaseUrl">> {
  return kind === "postgres"
    ? { databasePath: ":memory:", databaseUrl: await createPgDatabase() }
    : { databasePath: sqlitePath, databaseUrl: undefined };
}

/** buildApp on a fresh database of the given kind (SQLite in memory by default). */
export async function buildTestApp(
  options: { database?: DatabaseKind } & Partial<Config> = {},
  build: BuildOptions = {},
): Promise<FastifyInstance> {
  const { database = "sqlite", ...overrides } = options;
  return buildApp(testConfig({ ...(await databaseConfig(database)), ...overrides }), build);
}

/** The reset tokens better-auth stored (identifier `reset-password:<token>`). */
export async function resetTokens(app: FastifyInstance): Promise<string[]> {
  const rows = await app.db.kysely
    .selectFrom("verification" as never)
    .select("identifier" as never)
    .execute();
  return (rows as { identifier: string }[])
    .map((r) => r.identifier)
    .filter((id) => id.startsWith("reset-password:"))
    .map((id) => id.slice("reset-password:".length));
}

export const ORIGIN = "http://localhost:3000";

/** Minimal view of `app.inject` so helpers work with any Fastify instance. */
interface Injectable {
  inject(opts: {
    method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT";
    url: string;
    headers?: Record<string, string>;
    payload?: unknown;
  }): Promise<{
    statusCode: number;
    headers: Record<string, string | string[] | number | undefined>;
    json(): unknown;
    body: string;
  }>;
}

/** `name=value` pairs of every Set-Cookie, ready for a Cookie header. */
export function cookiesOf(headers: Record<string, unknown>): string {
  const raw = headers["set-cookie"];
  const list = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  return list.map((c: string) => c.split(";")[0]).join("; ");
}

export interface Session {
  cookie: string;
  token: string;
  userId: string;
}

/** Signs up through better-auth and returns the session cookie and bearer token. */
export async function signUp(
  app: Injectable,
  email: string,
  password = "correct-horse-battery",
  name = "Test User",
): Promise<Session> {
  const res = await app.inject({
    method: "POST",
    url: "/api/auth/sign-up/email",
    headers: { origin: ORIGIN, "content-type": "application/json" },
    payload: { email, password, name },
  });
  if (res.statusCode !== 200) throw new Error(`sign-up failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { user: { id: string } };
  return {
    cookie: cookiesOf(res.headers),
    token: String(res.headers["set-auth-token"]),
    userId: body.user.id,
  };
}

/**
 * Signs up `email` and makes it an admin directly in the database (the way bin/admin or the
 * setup link would); returns a fresh session of the admin.
 */
export async function signUpAdmin(
  app: FastifyInstance,
  email: string,
  password = "correct-horse-battery",
  name = "Test Admin",
): Promise<Session> {
  const s = await signUp(app, email, password, name);
  await (await app.auth.$context).internalAdapter.updateUser(s.userId, { role: "admin" });
  return s;
}

/** Signs in with email and password. */
export async function signIn(
  app: Injectable,
  email: string,
  password = "correct-horse-battery",
): Promise<{ status: number; session: Session | null; body: unknown }> {
  const res = await app.inject({
    method: "POST",
    url: "/api/auth/sign-in/email",
    headers: { origin: ORIGIN, "content-type": "application/json" },
    payload: { email, password },
  });
  const body = res.json() as { user?: { id: string } };
  const session =
    res.statusCode === 200 && body.user
      ? {
          cookie: cookiesOf(res.headers),
          token: String(res.headers["set-auth-token"]),
          userId: body.user.id,
        }
      : null;
  return { status: res.statusCode, session, body };
}

/** Headers for a cookie-authenticated browser request from the web origin. */
export function browser(s: Session): Record<string, string> {
  return { cookie: s.cookie, origin: ORIGIN };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export const JSON_CT = { "content-type": "application/json" };

/** A chat completion body for the fake llm-server's model. */
export const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "fake-model",
  messages: [{ role: "user", content }],
  ...extra,
});

/** Signs up `email` and gives it per-user `limits` through the admin route. */
export async function userWithLimits(
  app: Injectable,
  admin: Session,
  email: string,
  limits: Record<string, number>,
): Promise<Session> {
  const s = await signUp(app, email);
  const res = await app.inject({
    method: "PATCH",
    url: `/api/admin/users/${s.userId}/limits`,
    headers: { ...bearer(admin.token), ...JSON_CT },
    payload: limits,
  });
  if (res.statusCode !== 200) throw new Error(`set limits failed: ${res.statusCode} ${res.body}`);
  return s;
}

/** Creates an API key for `s` through the API; its id and the key (shown once). */
export async function createApiKey(
  app: Injectable,
  s: Session,
  name = "k",
): Promise<{ id: string; key: string }> {
  const res = await app.inject({
    method: "POST",
    url: "/api/user/api-keys",
    headers: { ...bearer(s.token), ...JSON_CT },
    payload: { name },
  });
  if (res.statusCode !== 201) throw new Error(`create key failed: ${res.statusCode} ${res.body}`);
  const { id, key } = res.json() as { id: string; key: string };
  return { id, key };
}

/**
 * Writes a throw-away self-signed certificate (1 day, for localhost and 127.0.0.1) and its
 * key into `dir` with openssl; returns the two paths.
 */
export function selfSignedCert(
  dir: string,
  name = "server",
): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  const openssl = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-days",
      "1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { encoding: "utf8" },
  );
  if (openssl.status !== 0) throw new Error(`openssl failed: ${openssl.stderr || openssl.error}`);
  return { certFile, keyFile };
}

/** Runs `fn`, which must throw a ConfigError, and returns that error. */
export function catchConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** A TCP port free on 127.0.0.1 right now (for a child process that needs one up front). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

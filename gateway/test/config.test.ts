import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isPlaceholder, loadConfig } from "../src/config.js";
import { catchConfigError, selfSignedCert } from "./helpers.js";

const GOOD_SECRET = "k3J9xQ2vL8pR5tW1yZ7aB4cD6eF0gH2iJ";
const GOOD_TOKEN = "llm-token-7f3a9c1e5b2d8f4a";

describe("loadConfig", () => {
  it("parses a valid production environment", () => {
    const config = loadConfig({
      APP_ENV: "production",
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "4100",
      LLM_SERVER_URLS: "http://a:8000/, http://b:8001",
      LLM_SERVER_TOKEN: GOOD_TOKEN,
      AUTH_SECRET: GOOD_SECRET,
      DATABASE_PATH: "/tmp/g.sqlite",
      PUBLIC_URL: "https://chat.example.org",
      LOG_LEVEL: "debug",
    });
    expect(config).toEqual({
      appEnv: "production",
      host: "127.0.0.1",
      port: 4100,
      llmServerUrls: ["http://a:8000", "http://b:8001"],
      llmServerToken: GOOD_TOKEN,
      upstreamTls: { ca: undefined, cert: undefined, key: undefined },
      authSecret: GOOD_SECRET,
      databasePath: "/tmp/g.sqlite",
      publicUrl: "https://chat.example.org",
      trustedOrigins: ["https://chat.example.org"],
      trustProxy: "loopback",
      requireAdmin2fa: false,
      signupMode: "open",
      invitationTtlMs: 7 * 86_400_000,
      mail: undefined,
      requireEmailVerification: false,
      firstTokenTimeoutMs: 120_000,
      idleTimeoutMs: 60_000,
      headersTimeoutMs: 10_000,
      shutdownDrainMs: 12_000,
      heartbeatMs: 15_000,
      oauth: { oidc: undefined, github: undefined, google: undefined },
      redisUrl: undefined,
      limits: {
        user: {
          requestsPerMinute: 60,
          tokensPerDay: 200_000,
          concurrentStreams: 4,
          maxTokens: 4096,
        },
        admin: { requestsPerMinute: 0, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 0 },
      },
      balancer: {
        healthIntervalMs: 5000,
        ejectAfterFailures: 3,
        readmitAfterChecks: 2,
        maxOutstanding: 0,
        queueMax: 100,
        queueTimeoutMs: 30_000,
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
      logLevel: "debug",
      warnings: [],
    });
  });

  it("reads limits, balancer, cache and Redis settings", () => {
    const config = loadConfig({
      AUTH_SECRET: GOOD_SECRET,
      LLM_SERVER_TOKEN: GOOD_TOKEN,
      REDIS_URL: "redis://127.0.0.1:6390/0",
      LIMIT_USER_TOKENS_PER_DAY: "500",
      GATEWAY_QUEUE_MAX: "3",
      CACHE_SCOPE: "shared",
      CACHE_ENABLED: "false",
    });
    expect(config.redisUrl).toBe("redis://127.0.0.1:6390/0");
    expect(config.limits.user.tokensPerDay).toBe(500);
    expect(config.balancer.queueMax).toBe(3);
    expect(config.cache).toMatchObject({ scope: "shared", enabled: false });
    expect(() =>
      loadConfig({ AUTH_SECRET: GOOD_SECRET, LLM_SERVER_TOKEN: GOOD_TOKEN, REDIS_URL: "http://x" }),
    ).toThrow(/REDIS_URL/);
    expect(() =>
      loadConfig({ AUTH_SECRET: GOOD_SECRET, LLM_SERVER_TOKEN: GOOD_TOKEN, CACHE_SCOPE: "all" }),
    ).toThrow(/CACHE_SCOPE must be one of user\|shared/);
  });

  it("applies defaults", () => {
    const config = loadConfig({ AUTH_SECRET: GOOD_SECRET, LLM_SERVER_TOKEN: GOOD_TOKEN });
    expect(config.appEnv).toBe("production");
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(4000);
    expect(config.llmServerUrls).toEqual(["http://127.0.0.1:8000"]);
    expect(config.databasePath).toBe("./data/gateway.sqlite");
    expect(config.publicUrl).toBe("http://localhost:3000");
    expect(config.logLevel).toBe("info");
  });

  it.each(["", "changeme", "change-me", "placeholder", "<your-secret>", "too-short-but-real"])(
    "rejects AUTH_SECRET=%j in production, naming the variable",
    (value) => {
      const err = catchConfigError(() =>
        loadConfig({ APP_ENV: "production", AUTH_SECRET: value, LLM_SERVER_TOKEN: GOOD_TOKEN }),
      );
      expect(err.variable).toBe("AUTH_SECRET");
      expect(err.message).toBe(
        "config error: set AUTH_SECRET (a random string of at least 32 characters)",
      );
      expect(err.message).not.toContain("\n");
    },
  );

  it("rejects a missing LLM_SERVER_TOKEN in production", () => {
    const err = catchConfigError(() => loadConfig({ AUTH_SECRET: GOOD_SECRET }));
    expect(err.variable).toBe("LLM_SERVER_TOKEN");
    expect(err.message).toMatch(/^config error: set LLM_SERVER_TOKEN/);
  });

  it("generates ephemeral secrets with a warning in development", () => {
    const config = loadConfig({ APP_ENV: "development" });
    expect(config.authSecret.length).toBeGreaterThanOrEqual(32);
    expect(isPlaceholder(config.authSecret)).toBe(false);
    expect(config.llmServerToken.length).toBeGreaterThanOrEqual(16);
    expect(config.warnings).toHaveLength(2);
    expect(config.warnings.join("\n")).toContain("AUTH_SECRET");
    // A new value every time: nothing is persisted.
    expect(loadConfig({ APP_ENV: "development" }).authSecret).not.toBe(config.authSecret);
  });

  it("keeps a real secret in test mode", () => {
    const config = loadConfig({ APP_ENV: "test", AUTH_SECRET: GOOD_SECRET });
    expect(config.authSecret).toBe(GOOD_SECRET);
    expect(config.warnings).toEqual([expect.stringContaining("LLM_SERVER_TOKEN")]);
  });

  it("warns that ADMIN_EMAIL no longer makes an admin", () => {
    const config = loadConfig({
      APP_ENV: "test",
      AUTH_SECRET: GOOD_SECRET,
      LLM_SERVER_TOKEN: GOOD_TOKEN,
      ADMIN_EMAIL: "boss@example.org",
    });
    expect(config.warnings).toEqual([expect.stringContaining("ADMIN_EMAIL is ignored")]);
    expect(config).not.toHaveProperty("adminEmail");
  });

  it("reads CORS_ORIGINS as a list of exact origins trusted besides PUBLIC_URL", () => {
    const config = loadConfig({
      APP_ENV: "development",
      PUBLIC_URL: "https://chat.example.org",
      CORS_ORIGINS: "https://a.example, http://localhost:5173/,https://a.example",
    });
    expect(config.trustedOrigins).toEqual([
      "https://chat.example.org",
      "https://a.example",
      "http://localhost:5173",
    ]);
  });

  it("uses PostgreSQL when DATABASE_URL is a postgres:// or postgresql:// URL", () => {
    for (const url of [
      "postgres://u:p@db:5432/gw",
      "postgresql://u@localhost/gw?sslmode=require",
    ]) {
      expect(loadConfig({ APP_ENV: "development", DATABASE_URL: url }).databaseUrl).toBe(url);
    }
    expect(loadConfig({ APP_ENV: "development" }).databaseUrl).toBeUndefined();
    for (const url of ["mysql://u:secret@db/gw", "not a url", "./data/gateway.sqlite"]) {
      const err = catchConfigError(() => loadConfig({ APP_ENV: "development", DATABASE_URL: url }));
      expect(err.variable).toBe("DATABASE_URL");
      expect(err.message).toBe(
        "config error: DATABASE_URL must be a postgres:// or postgresql:// URL (unset it for SQLite)",
      );
      // The URL may hold a password: it is never repeated.
      expect(err.message).not.toContain("secret");
    }
  });

  it("reads TLS_CERT_FILE and TLS_KEY_FILE together, or fails with one line", () => {
    const dir = mkdtempSync(join(tmpdir(), "gateway-tls-config-"));
    const { certFile: cert, keyFile: key } = selfSignedCert(dir);
    const env = { APP_ENV: "development" } as const;
    expect(loadConfig({ ...env, TLS_CERT_FILE: cert, TLS_KEY_FILE: key }).tls).toEqual({
      certFile: cert,
      keyFile: key,
      cert: readFileSync(cert, "utf8"),
      key: readFileSync(key, "utf8"),
    });
    expect(loadConfig(env).tls).toBeUndefined();
    const onlyCert = catchConfigError(() => loadConfig({ ...env, TLS_CERT_FILE: cert }));
    expect(onlyCert.variable).toBe("TLS_KEY_FILE");
    expect(onlyCert.message).toBe(
      "config error: set TLS_KEY_FILE too (TLS_CERT_FILE and TLS_KEY_FILE go together)",
    );
    const onlyKey = catchConfigError(() => loadConfig({ ...env, TLS_KEY_FILE: key }));
    expect(onlyKey.variable).toBe("TLS_CERT_FILE");
    const missing = join(dir, "nope.pem");
    const unreadable = catchConfigError(() =>
      loadConfig({ ...env, TLS_CERT_FILE: cert, TLS_KEY_FILE: missing }),
    );
    expect(unreadable.variable).toBe("TLS_KEY_FILE");
    expect(unreadable.message).toBe(
      `config error: TLS_KEY_FILE cannot be read: ${missing} (ENOENT)`,
    );
    // A key that does not belong to the certificate (or a file that is no PEM at all).
    const other = selfSignedCert(dir, "other");
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello");
    for (const [c, k] of [
      [cert, other.keyFile],
      [notPem, key],
    ]) {
      const bad = catchConfigError(() => loadConfig({ ...env, TLS_CERT_FILE: c, TLS_KEY_FILE: k }));
      expect(bad.message).toMatch(
        /^config error: TLS_CERT_FILE and TLS_KEY_FILE are not a usable certificate and key \(.+\)$/,
      );
      expect(bad.message).not.toContain("\n");
    }
  });

  it.each([
    [{ GATEWAY_PORT: "abc" }, "GATEWAY_PORT"],
    [{ GATEWAY_PORT: "70000" }, "GATEWAY_PORT"],
    [{ APP_ENV: "staging" }, "APP_ENV"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ LLM_SERVER_URLS: "not a url" }, "LLM_SERVER_URLS"],
    [{ LLM_SERVER_URLS: "ftp://x" }, "LLM_SERVER_URLS"],
    [{ WEB_ORIGIN: "nope" }, "WEB_ORIGIN"],
    [{ PUBLIC_URL: "nope" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "ftp://chat.example.org" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "https://chat.example.org/app" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "https://chat.example.org/?x=1" }, "PUBLIC_URL"],
    [{ PUBLIC_URL: "https://u:p@chat.example.org" }, "PUBLIC_URL"],
    [{ CORS_ORIGINS: "*" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "https://a.example/app" }, "CORS_ORIGINS"],
    [{ SIGNUP_MODE: "everyone" }, "SIGNUP_MODE"],
    [{ INVITATION_TTL_HOURS: "0" }, "INVITATION_TTL_HOURS"],
    [{ INVITATION_TTL_HOURS: "1e9" }, "INVITATION_TTL_HOURS"],
    [{ SMTP_URL: "http://mail.example.org", MAIL_FROM: "a@b.c" }, "SMTP_URL"],
    [{ SMTP_URL: "smtp://:secret@", MAIL_FROM: "a@b.c" }, "SMTP_URL"],
    [{ SMTP_URL: "smtp://mail.example.org" }, "MAIL_FROM"],
    [{ SMTP_URL: "smtp://mail.example.org", MAIL_FROM: "not an address" }, "MAIL_FROM"],
    [
      { SMTP_URL: "smtp://u:p@mail.example.org", SMTP_PASSWORD: "q", MAIL_FROM: "a@b.c" },
      "SMTP_PASSWORD",
    ],
    [{ SMTP_PASSWORD: "lonely" }, "SMTP_PASSWORD"],
    [{ REQUIRE_EMAIL_VERIFICATION: "true" }, "REQUIRE_EMAIL_VERIFICATION"],
  ])("rejects invalid %j naming %s", (env, variable) => {
    const err = catchConfigError(() =>
      loadConfig({ APP_ENV: "development", ...env } as NodeJS.ProcessEnv),
    );
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(new RegExp(`^config error: ${variable} `));
  });

  it("reads the sign-up mode and the SMTP settings; never echoes the SMTP password", () => {
    const config = loadConfig({
      APP_ENV: "development",
      SIGNUP_MODE: "approval",
      INVITATION_TTL_HOURS: "48",
      SMTP_URL: "smtps://mailer%40example.org:p%40ss@mail.example.org",
      MAIL_FROM: "LLM stack <llm@example.org>",
      REQUIRE_EMAIL_VERIFICATION: "true",
    });
    expect(config.signupMode).toBe("approval");
    expect(config.invitationTtlMs).toBe(48 * 3_600_000);
    expect(config.requireEmailVerification).toBe(true);
    expect(config.mail).toEqual({
      host: "mail.example.org",
      port: 465,
      secure: true,
      user: "mailer@example.org",
      password: "p@ss",
      from: "LLM stack <llm@example.org>",
    });
    const plain = loadConfig({
      APP_ENV: "development",
      SMTP_URL: "smtp://mail.example.org:2525",
      MAIL_FROM: "llm@example.org",
    });
    expect(plain.mail).toMatchObject({ port: 2525, secure: false, user: undefined });
    const err = catchConfigError(() =>
      loadConfig({
        APP_ENV: "development",
        SMTP_URL: "smtp://u:hunter2@ho st",
        MAIL_FROM: "a@b.c",
      }),
    );
    expect(err.message).not.toContain("hunter2");
  });
});

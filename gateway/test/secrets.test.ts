import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { redactUrl, safeEqual } from "../src/auth/redact.js";
import { setupDatabase } from "../src/auth/setup.js";
import { runAdmin } from "../src/cli.js";
import { buildTestApp, JSON_CT, ORIGIN, signIn, testConfig } from "./helpers.js";

const quiet = { error: () => undefined, warn: () => undefined, debug: () => undefined };

describe("secrets stay out of the log", () => {
  it("drops the query string of /api/auth URLs (OAuth code=, state=) in every spelling", async () => {
    const lines: string[] = [];
    const app = await buildTestApp(
      { logLevel: "info" },
      { logStream: { write: (l) => lines.push(l) } },
    );
    try {
      for (const path of [
        "/api/auth/callback/github",
        "/api/auth/./callback/github",
        "/api/%61uth/callback/github",
        "/API/AUTH/callback/github",
        "/api/auth/oauth2/callback/oidc",
      ]) {
        await app.inject({ method: "GET", url: `${path}?code=SECRET-CODE-123&state=STATE-456` });
      }
      const log = lines.join("\n");
      expect(lines.filter((l) => l.includes("request completed")).length).toBe(5);
      expect(log).not.toContain("SECRET-CODE-123");
      expect(log).not.toContain("STATE-456");
      // Other routes keep their query (the operator's debugging aid).
      await app.inject({ method: "GET", url: "/health?probe=1" });
      expect(lines.join("\n")).toContain("/health?probe=1");
    } finally {
      await app.close();
    }
  });

  it("redactUrl keeps the path, hides tokens in reset links and auth queries", () => {
    expect(redactUrl("/api/auth/reset-password/abc123?callbackURL=x")).toBe(
      "/api/auth/reset-password/[redacted]?[redacted]",
    );
    expect(redactUrl("/api/auth/sign-in/email")).toBe("/api/auth/sign-in/email");
    expect(redactUrl("/api/conversations?q=hello")).toBe("/api/conversations?q=hello");
  });

  it("bin/admin reset-link prints a link that resets the password", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "gateway-reset-")), "gateway.sqlite");
    const config = testConfig({ databasePath: path });
    await runAdmin(
      ["create-user", "--email", "a@example.org", "--password", "old-password-1"],
      config,
    );
    const lines = await runAdmin(["reset-link", "--email", "a@example.org"], config);
    const link = new URL(lines.at(-1) ?? "");
    expect(link.pathname).toMatch(/^\/api\/auth\/reset-password\/\w+$/);
    const token = link.pathname.split("/").at(-1);
    const app = await buildTestApp({ databasePath: path });
    try {
      const reset = await app.inject({
        method: "POST",
        url: "/api/auth/reset-password",
        headers: { origin: ORIGIN, ...JSON_CT },
        payload: { token, newPassword: "new-password-22" },
      });
      expect(reset.statusCode).toBe(200);
      expect((await signIn(app, "a@example.org", "new-password-22")).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe("METRICS_TOKEN", () => {
  it("is compared in constant time (hashes of equal length), and still works", async () => {
    expect(safeEqual("Bearer abc", "Bearer abc")).toBe(true);
    expect(safeEqual("Bearer ab", "Bearer abc")).toBe(false);
    expect(safeEqual(undefined, "")).toBe(false);
    const app = await buildTestApp({ metricsToken: "metrics-secret-0123456789" });
    try {
      const ok = await app.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: "Bearer metrics-secret-0123456789" },
        remoteAddress: "10.0.0.9",
      } as never);
      expect(ok.statusCode).toBe(200);
      for (const auth of [
        "Bearer metrics-secret-012345678",
        "Bearer metrics-secret-0123456789x",
        "",
      ]) {
        const no = await app.inject({
          method: "GET",
          url: "/metrics",
          headers: { authorization: auth },
        });
        expect(no.statusCode).toBe(403);
      }
    } finally {
      await app.close();
    }
  });
});

describe("the SQLite files are private", () => {
  it("creates the data directory 0700 and the database, -wal and -shm 0600", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "gateway-perm-")), "data");
    const path = join(dir, "gateway.sqlite");
    const old = process.umask(0o022);
    try {
      const { db } = await setupDatabase(testConfig({ databasePath: path }), quiet);
      try {
        const mode = (p: string) => statSync(p).mode & 0o777;
        expect(mode(dir)).toBe(0o700);
        for (const f of [path, `${path}-wal`, `${path}-shm`]) expect(mode(f)).toBe(0o600);
      } finally {
        await db.close();
      }
    } finally {
      process.umask(old);
    }
  });
});

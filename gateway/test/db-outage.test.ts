import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { isDatabaseUnavailable, noteDatabaseError } from "../src/db/outage.js";
import { DB_PROBE_CACHE_MS } from "../src/routes/health.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  createApiKey,
  JSON_CT,
  ORIGIN,
  type Session,
  signUp,
  testConfig,
} from "./helpers.js";
import { lockSqlite, sleep, withPrivatePostgres } from "./outage.js";
import { pgCtl } from "./postgres.js";

/** What every request that needs the database answers while it is unavailable. */
const UNAVAILABLE = {
  error: {
    code: "DATABASE_UNAVAILABLE",
    type: "server_error",
    message: "The database is unavailable; try again in a few seconds",
  },
};

/** The requests of the issue, each of which needs the database. */
function outageRequests(app: FastifyInstance, s: Session, key: string) {
  return {
    signIn: () =>
      app.inject({
        method: "POST",
        url: "/api/auth/sign-in/email",
        headers: { origin: ORIGIN, ...JSON_CT },
        payload: { email: "a@example.org", password: "correct-horse-battery" },
      }),
    signUp: () =>
      app.inject({
        method: "POST",
        url: "/api/auth/sign-up/email",
        headers: { origin: ORIGIN, ...JSON_CT },
        payload: { email: "new@example.org", password: "correct-horse-battery", name: "N" },
      }),
    newConversation: () =>
      app.inject({
        method: "POST",
        url: "/api/conversations",
        headers: { ...bearer(s.token), ...JSON_CT },
        payload: {},
      }),
    apiKey: () => app.inject({ method: "GET", url: "/v1/models", headers: bearer(key) }),
  };
}

/** 503 with Retry-After, in the gateway's envelope (OpenAI's exact shape under /v1/). */
async function expectUnavailable(
  res: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  openAi = false,
) {
  expect(res.statusCode).toBe(503);
  expect(res.headers["retry-after"]).toBe("5");
  expect(res.json()).toEqual(
    openAi
      ? { error: { ...UNAVAILABLE.error, code: "database_unavailable", param: null } }
      : UNAVAILABLE,
  );
}

const ready = (app: FastifyInstance) => app.inject({ method: "GET", url: "/health/ready" });

async function setUp(app: FastifyInstance) {
  const s = await signUp(app, "a@example.org");
  const { key } = await createApiKey(app, s);
  return { s, key, req: outageRequests(app, s, key) };
}

describe("a locked SQLite database", () => {
  let fake: FakeLlm;
  let dir: string;
  let path: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    fake = await startFakeLlm();
    dir = mkdtempSync(join(tmpdir(), "gw-locked-"));
    path = join(dir, "gw.sqlite");
    // authCacheTtlMs 0: the key is checked in the database on every request.
    app = await buildApp(
      testConfig({ databasePath: path, llmServerUrls: [fake.url], authCacheTtlMs: 0 }),
    );
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 503 + Retry-After in the envelope, readiness 503, and recovers", async () => {
    const { req } = await setUp(app);
    expect((await ready(app)).statusCode).toBe(200);
    const unlock = lockSqlite(path);
    try {
      await sleep(DB_PROBE_CACHE_MS + 50);
      const probe = await ready(app);
      expect(probe.statusCode).toBe(503);
      expect(probe.json().database).toEqual({ ready: false });
      await expectUnavailable(await req.signIn());
      await expectUnavailable(await req.signUp());
      await expectUnavailable(await req.newConversation());
      await expectUnavailable(await req.apiKey(), true);
    } finally {
      unlock();
    }
    await sleep(DB_PROBE_CACHE_MS + 50);
    expect((await ready(app)).statusCode).toBe(200);
    expect((await req.signIn()).statusCode).toBe(200);
    expect((await req.apiKey()).statusCode).toBe(200);
    expect((await req.newConversation()).statusCode).toBe(201);
  }, 60_000);

  it("a wrong password is still 401 and a taken email still 422 while the database is up", async () => {
    const wrong = await app.inject({
      method: "POST",
      url: "/api/auth/sign-in/email",
      headers: { origin: ORIGIN, ...JSON_CT },
      payload: { email: "a@example.org", password: "wrong-password-123" },
    });
    expect(wrong.statusCode).toBe(401);
    const taken = await app.inject({
      method: "POST",
      url: "/api/auth/sign-up/email",
      headers: { origin: ORIGIN, ...JSON_CT },
      payload: { email: "a@example.org", password: "correct-horse-battery", name: "A" },
    });
    expect(taken.statusCode).toBe(422);
    const badKey = await app.inject({
      method: "GET",
      url: "/v1/models",
      headers: bearer("sk-not-a-real-key-0000000000000000"),
    });
    expect(badKey.statusCode).toBe(401);
  });
});

describe("a read-only SQLite database", () => {
  it("is not ready and answers writes with 503", async () => {
    const fake = await startFakeLlm();
    const app = await buildApp(testConfig({ llmServerUrls: [fake.url] }));
    try {
      const s = await signUp(app, "ro@example.org");
      expect((await ready(app)).statusCode).toBe(200);
      // SQLite's own read-only switch stands in for a disk remounted read-only (file modes
      // would not stop root): writes fail with SQLITE_READONLY.
      await sql`pragma query_only = on`.execute(app.db.kysely);
      await sleep(DB_PROBE_CACHE_MS + 50);
      expect((await ready(app)).statusCode).toBe(503);
      const res = await app.inject({
        method: "POST",
        url: "/api/conversations",
        headers: { ...bearer(s.token), ...JSON_CT },
        payload: {},
      });
      await expectUnavailable(res);
    } finally {
      await app.close();
      await fake.close();
    }
  });
});

describe("PostgreSQL stopped", () => {
  const pg = withPrivatePostgres();

  it("answers 503 + Retry-After, readiness 503, and recovers when it is back", async ({ skip }) => {
    const app = await pg.app({ authCacheTtlMs: 0 }, skip);
    if (!app || "reason" in pg.cluster) return;
    const { cluster } = pg;
    const { req } = await setUp(app);
    expect((await ready(app)).statusCode).toBe(200);
    pgCtl(cluster, "stop");
    await sleep(DB_PROBE_CACHE_MS + 50);
    expect((await ready(app)).statusCode).toBe(503);
    await expectUnavailable(await req.signIn());
    await expectUnavailable(await req.signUp());
    await expectUnavailable(await req.apiKey(), true);
    await expectUnavailable(await req.newConversation());
    pgCtl(cluster, "start");
    await sleep(DB_PROBE_CACHE_MS + 50);
    expect((await ready(app)).statusCode).toBe(200);
    expect((await req.signIn()).statusCode).toBe(200);
    expect((await req.apiKey()).statusCode).toBe(200);
    expect((await req.newConversation()).statusCode).toBe(201);
  }, 90_000);
});

describe("isDatabaseUnavailable", () => {
  const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

  it("counts a network error only when a database query threw it", () => {
    // Redis or an llm-server refusing a connection is not a database outage.
    expect(isDatabaseUnavailable(refused())).toBe(false);
    expect(isDatabaseUnavailable(new Error("wrapped", { cause: refused() }))).toBe(false);
    const fromQuery = refused();
    noteDatabaseError(fromQuery);
    expect(isDatabaseUnavailable(fromQuery)).toBe(true);
    expect(isDatabaseUnavailable(new Error("wrapped", { cause: fromQuery }))).toBe(true);
  });

  it("counts SQLite and PostgreSQL outage codes wherever they appear", () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ["SQLITE_BUSY", "SQLITE_READONLY_DBMOVED", "SQLITE_FULL", "57P01", "53300"])
      expect(isDatabaseUnavailable(new Error("x", { cause: coded(code) }))).toBe(true);
    for (const code of ["SQLITE_CONSTRAINT_FOREIGNKEY", "23505", "42P01"])
      expect(isDatabaseUnavailable(coded(code))).toBe(false);
  });
});

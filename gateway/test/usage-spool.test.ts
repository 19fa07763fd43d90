import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { Metrics } from "../src/services/metrics.js";
import { UsageRecorder } from "../src/services/recorder.js";
import type { UsageRow } from "../src/services/usage.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, createApiKey, signUp, testConfig } from "./helpers.js";
import { eventually, lockSqlite, sleep, withPrivatePostgres } from "./outage.js";
import { pgCtl } from "./postgres.js";

/**
 * An API key, verified once while the database is up: its check (which writes the key's
 * last use) stays cached, so the requests made under the lock reach the usage recorder.
 */
async function cachedKey(app: FastifyInstance, email: string): Promise<string> {
  const { key } = await createApiKey(app, await signUp(app, email));
  const res = await app.inject({ method: "GET", url: "/v1/models", headers: bearer(key) });
  if (res.statusCode !== 200) throw new Error(`key check failed: ${res.statusCode}`);
  await app.db.drain();
  return key;
}

/** `n` model lists answered 200 (each leaves a usage row), their rows settled. */
async function serveModels(app: FastifyInstance, key: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await app.inject({ method: "GET", url: "/v1/models", headers: bearer(key) });
    expect(res.statusCode).toBe(200);
  }
  await app.db.drain();
}

const usageRows = async (app: FastifyInstance) =>
  Number(
    (
      await app.db.kysely
        .selectFrom("usage_record")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow()
    ).n,
  );

/** Rows in a spool file (one JSON array per line). */
const spooledRows = (path: string) =>
  existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter(Boolean)
        .flatMap((l) => JSON.parse(l) as unknown[]).length
    : 0;

const metric = async (app: FastifyInstance, name: string) => {
  const line = (await app.services.metrics.render()).split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").at(-1)) : 0;
};

describe("usage rows through a locked SQLite database", () => {
  let fake: FakeLlm;
  let dir: string;
  let path: string;
  const apps: FastifyInstance[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gw-spool-"));
    path = join(dir, "gw.sqlite");
  });
  beforeAll(async () => {
    fake = await startFakeLlm();
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (path: string, extra: Partial<Config> = {}) => {
    const app = await buildApp(
      testConfig({
        databasePath: path,
        llmServerUrls: [fake.url],
        authCacheTtlMs: 600_000,
        ...extra,
      }),
    );
    apps.push(app);
    return app;
  };

  it("are written as bulk writes (no fsync of their own), and nothing else is", async () => {
    const app = await start(path);
    const key = await cachedKey(app, "bulk@example.org");
    const bulk = vi.spyOn(app.db, "bulk");
    const before = await usageRows(app);
    await serveModels(app, key, 3);
    await eventually(async () => (await usageRows(app)) === before + 3, 10_000);
    expect(bulk).toHaveBeenCalled();
    // A key made now (an account write) is not a bulk write.
    bulk.mockClear();
    await createApiKey(app, await signUp(app, "bulk2@example.org"));
    expect(bulk).not.toHaveBeenCalled();
  });

  it("are spooled to a file while the lock is held, and written once it is released", async () => {
    const app = await start(path);
    const key = await cachedKey(app, "a@example.org");
    const unlock = lockSqlite(path);
    try {
      await serveModels(app, key, 3);
      // Served, so billed: on disk (fsync'd) before the database can take them.
      expect(spooledRows(`${path}.usage-spool`)).toBe(3);
      expect(await metric(app, 'gateway_usage_spooled_rows_total{to="file"}')).toBe(3);
    } finally {
      unlock();
    }
    await eventually(
      async () => (await usageRows(app)) === 4 && spooledRows(`${path}.usage-spool`) === 0,
      60_000,
    );
    expect(await metric(app, "gateway_usage_write_retries_total")).toBeGreaterThanOrEqual(1);
    expect(await metric(app, "gateway_usage_dropped_rows_total")).toBe(0);
    // Each write against the lock blocks for the busy timeout and retries back off to 10 s:
    // on a loaded machine this takes well over the default 20 s.
  }, 90_000);

  it("left in the spool at shutdown are written by the next start", async () => {
    const first = await start(path);
    const key = await cachedKey(first, "b@example.org");
    const unlock = lockSqlite(path);
    try {
      await serveModels(first, key, 2);
      // Shutdown while the database is still locked: the rows stay in the spool file.
      await first.close();
    } finally {
      unlock();
    }
    expect(spooledRows(`${path}.usage-spool`)).toBe(2);
    const second = await start(path);
    await eventually(
      async () => (await usageRows(second)) === 3 && spooledRows(`${path}.usage-spool`) === 0,
      60_000,
    );
  }, 90_000);
});

function row(i: number): UsageRow {
  return {
    ts: i,
    userId: "u",
    apiKeyId: null,
    route: "/v1/models",
    model: null,
    promptTokens: 0,
    completionTokens: 0,
    quotaTokens: 0,
    ttftMs: null,
    durationMs: 1,
    status: 200,
    outcome: "ok",
    cacheHit: 0,
    server: null,
    errorCode: null,
  };
}

const busy = () => Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
const silentLog = () => {
  const errors: string[] = [];
  return {
    errors,
    log: {
      error: (_: unknown, msg?: string) => errors.push(String(msg)),
      warn: () => undefined,
      info: () => undefined,
    } as never,
  };
};

describe("UsageRecorder", () => {
  it("drops rows only past the in-memory bound (no spool file), counted and logged as errors", async () => {
    const metrics = new Metrics();
    const { errors, log } = silentLog();
    const rec = new UsageRecorder(() => Promise.reject(busy()), undefined, {
      maxHeldRows: 5,
      retryBaseMs: 60_000,
      batchMs: 1,
      metrics,
      log,
    });
    await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => rec.record(row(i))));
    expect(rec.backlog).toBe(5);
    expect(await metrics.render()).toContain('gateway_usage_dropped_rows_total{reason="bound"} 3');
    expect(errors).toContain("usage rows dropped: the in-memory spool is full");
    await rec.close(100);
  });

  it("retries with back-off until the database answers, keeping the order", async () => {
    const written: number[] = [];
    let failures = 3;
    const metrics = new Metrics();
    const rec = new UsageRecorder(
      async (rows) => {
        if (failures-- > 0) throw busy();
        written.push(...rows.map((r) => r.ts));
      },
      undefined,
      { retryBaseMs: 20, batchMs: 1, metrics, log: silentLog().log },
    );
    await rec.record(row(1));
    await rec.record(row(2));
    await eventually(async () => written.length === 2, 5_000);
    expect(written).toEqual([1, 2]);
    expect(await metrics.render()).toMatch(/gateway_usage_write_retries_total [3-9]/);
    await rec.close(100);
  });

  it("flush(deadlineMs) spools what a hanging database did not take, within the deadline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-spool-"));
    try {
      const spoolPath = join(dir, "usage.spool");
      // The first batch hangs (a database that stopped answering); later ones would fail.
      let calls = 0;
      const rec = new UsageRecorder(
        () => (calls++ === 0 ? new Promise<void>(() => undefined) : Promise.reject(busy())),
        undefined,
        { spoolPath, batchMs: 1, log: silentLog().log },
      );
      await rec.start();
      void rec.record(row(1));
      await sleep(20);
      void rec.record(row(2));
      void rec.record(row(3));
      const t0 = Date.now();
      const result = await rec.flush(300);
      expect(Date.now() - t0).toBeLessThan(1_000);
      // Row 1 is with the hanging write; rows 2 and 3 are on disk.
      expect(result).toEqual({ spooled: 2, held: 0 });
      expect(spooledRows(spoolPath)).toBe(2);
      await rec.close(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps rows in memory when the spool file cannot be written", async () => {
    const { errors, log } = silentLog();
    const rec = new UsageRecorder(() => Promise.reject(busy()), undefined, {
      spoolPath: join(tmpdir(), "no-such-dir-gw", "usage.spool"),
      batchMs: 1,
      retryBaseMs: 60_000,
      log,
    });
    await rec.start();
    await rec.record(row(1));
    expect(rec.backlog).toBe(1);
    expect(errors).toContain("cannot write the usage spool file");
    await rec.close(0);
  });
});

describe("usage rows while PostgreSQL is stopped", () => {
  const pg = withPrivatePostgres();

  it("spools the rows of answered requests and writes them once it is back", async ({ skip }) => {
    const app = await pg.app(
      { databasePath: join(pg.dir, "gw.sqlite"), authCacheTtlMs: 600_000 },
      skip,
    );
    if (!app || "reason" in pg.cluster) return;
    const { cluster } = pg;
    const s = await signUp(app, "pg@example.org");
    const { key } = await createApiKey(app, s);
    // Verified (and cached) while the database is up.
    expect(
      (await app.inject({ method: "GET", url: "/v1/models", headers: bearer(key) })).statusCode,
    ).toBe(200);
    await app.db.drain();
    pgCtl(cluster, "stop");
    await serveModels(app, key, 3);
    const spool = join(pg.dir, "gw.sqlite.usage-spool");
    expect(spooledRows(spool)).toBe(3);
    pgCtl(cluster, "start");
    await eventually(
      async () => (await usageRows(app).catch(() => 0)) === 4 && spooledRows(spool) === 0,
      30_000,
    );
    expect(await metric(app, "gateway_usage_dropped_rows_total")).toBe(0);
  }, 60_000);
});

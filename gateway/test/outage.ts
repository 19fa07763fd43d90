/** Helpers for tests of a database that is locked or stopped. */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll } from "vitest";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { testConfig } from "./helpers.js";
import type { ClusterState } from "./pg-process.js";
import { PG_SETUP_TIMEOUT, pgCtl, startCluster } from "./postgres.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it is true (throws after `ms`). */
export async function eventually(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(100);
  }
}

/**
 * Another connection takes SQLite's write lock and keeps it (BEGIN EXCLUSIVE), as another
 * process would; returns the release.
 */
export function lockSqlite(path: string): () => void {
  const locker = new SQLite(path);
  locker.exec("BEGIN EXCLUSIVE");
  return () => {
    locker.exec("ROLLBACK");
    locker.close();
  };
}

/** What `withPrivatePostgres` sets up for a describe block (filled in by its beforeAll). */
export interface PrivatePostgres {
  fake: FakeLlm;
  /** Temp directory holding the cluster (and whatever the tests put there). */
  dir: string;
  cluster: ClusterState;
  /** Apps closed after the tests, before the cluster stops. */
  apps: FastifyInstance[];
  /**
   * A gateway on the cluster's `postgres` database and the fake llm-server (closed after the
   * tests); null, with the test skipped, where PostgreSQL cannot run.
   */
  app(
    overrides: Partial<Config>,
    skip: (skip: boolean, note: string) => void,
  ): Promise<FastifyInstance | null>;
}

/**
 * In a describe block: a fake llm-server and a PostgreSQL cluster of its own (stopping the
 * run's shared one would break the other test files), started before its tests; after them,
 * the apps are closed, the cluster stopped and its directory deleted. Where PostgreSQL cannot
 * run, `cluster` has the reason (fatal under CI=true).
 */
export function withPrivatePostgres(): PrivatePostgres {
  const env = {
    apps: [] as FastifyInstance[],
    async app(overrides: Partial<Config>, skip: (skip: boolean, note: string) => void) {
      const { cluster } = env;
      skip("reason" in cluster, "PostgreSQL cannot run here");
      if ("reason" in cluster) return null;
      const app = await buildApp(
        testConfig({
          databaseUrl: `${cluster.url}/postgres`,
          llmServerUrls: [env.fake.url],
          ...overrides,
        }),
      );
      env.apps.push(app);
      return app;
    },
  } as unknown as PrivatePostgres;
  beforeAll(async () => {
    env.fake = await startFakeLlm();
    env.dir = mkdtempSync(join(tmpdir(), "gw-pg-outage-"));
    // The postgres user must reach the cluster directory inside it.
    chmodSync(env.dir, 0o711);
    env.cluster = await startCluster(env.dir);
    if ("reason" in env.cluster) {
      if (process.env.CI) throw new Error(`PostgreSQL unavailable: ${env.cluster.reason}`);
      console.warn(`SKIPPING PostgreSQL outage tests: ${env.cluster.reason}`);
    }
  }, PG_SETUP_TIMEOUT);
  afterAll(async () => {
    for (const app of env.apps) await app.close().catch(() => undefined);
    await env.fake.close();
    if (!("reason" in env.cluster)) {
      try {
        pgCtl(env.cluster, "stop");
      } catch {
        // already stopped
      }
    }
    rmSync(env.dir, { recursive: true, force: true });
  });
  return env;
}

import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { SseParser } from "../src/sse.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { testConfig } from "./helpers.js";

/** Things to undo after a test, last first. */
export type Cleanup = (() => Promise<unknown>)[];

/**
 * Two fake llm-servers behind one gateway (listening on port 0), `a` preferred: `b`
 * reports load of its own, so every request goes to `a` first while it is usable.
 */
export async function twoServers(
  cleanup: Cleanup,
  overrides: Partial<Config> = {},
): Promise<{ a: FakeLlm; b: FakeLlm; app: FastifyInstance; url: string }> {
  const a = await startFakeLlm();
  const b = await startFakeLlm();
  cleanup.push(
    () => a.close(),
    () => b.close(),
  );
  const app = await buildApp(testConfig({ llmServerUrls: [a.url, b.url], ...overrides }));
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  cleanup.push(() => app.close());
  await preferFirst(app, b);
  return { a, b, app, url };
}

/**
 * Makes `loaded` report load of its own so the gateway's other server is preferred, and
 * waits until every probe passed (each has a 1 s timeout, which a loaded machine can miss:
 * an unhealthy first server, or `loaded` without its reported load, would send requests
 * to `loaded`).
 */
export async function preferFirst(app: FastifyInstance, loaded: FakeLlm): Promise<void> {
  loaded.health = { status: 200, body: { status: "ready", running: 3, queued: 0, max_running: 4 } };
  for (let i = 0; i < 10; i++) {
    await app.services.balancer.checkAll();
    const states = app.services.balancer.snapshot().servers.map((x) => x.state);
    if (states.every((st) => st === "healthy")) break;
  }
}

/** The `data:` payloads of an SSE response text (the gateway's own parser). */
export const dataEvents = (text: string) => [...new SseParser().push(Buffer.from(text))];

/** The newest usage row of a user (after the writes in flight). */
export async function lastUsage(
  app: FastifyInstance,
  userId: string,
): Promise<Record<string, unknown> | undefined> {
  await app.db.drain();
  return app.db.kysely
    .selectFrom("usage_record")
    .selectAll()
    .where("userId", "=", userId)
    .orderBy("id", "desc")
    .limit(1)
    .executeTakeFirst();
}

/** Runs every cleanup step, last first, ignoring failures. */
export async function runCleanup(cleanup: Cleanup): Promise<void> {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
}

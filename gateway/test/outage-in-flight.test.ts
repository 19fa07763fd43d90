import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, chat, createApiKey, JSON_CT, signUp, testConfig } from "./helpers.js";
import { lockSqlite, sleep } from "./outage.js";

/**
 * The gateway checks the caller of every call in flight again every AUTH_CACHE_TTL_MS. A
 * check that fails because the database is down is no verdict: the call goes on (it was
 * ended with 403 ACCESS_REVOKED, found by the multi-host test restarting PostgreSQL).
 */
describe("a call in flight while the database is unavailable", () => {
  let fake: FakeLlm;
  let dir: string;
  let path: string;
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    fake = await startFakeLlm();
    dir = mkdtempSync(join(tmpdir(), "gw-in-flight-"));
    path = join(dir, "gw.sqlite");
    // Checks every 100 ms, each in the database (no key cache).
    app = await buildApp(
      testConfig({ databasePath: path, llmServerUrls: [fake.url], authCacheTtlMs: 100 }),
    );
    url = await app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(["api key", "session"])(
    "is not ended as access revoked (%s)",
    async (via) => {
      const s = await signUp(app, `flight-${via.replace(" ", "")}@example.org`);
      const credential = via === "api key" ? (await createApiKey(app, s)).key : s.token;
      const controller = new AbortController();
      // SLOW: one chunk, then the fake stays silent until the client leaves.
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(credential), ...JSON_CT },
        body: JSON.stringify(chat("SLOW", { stream: true })),
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value);
      const rest = (async () => {
        for (;;) {
          const { value, done } = await reader
            .read()
            .catch(() => ({ value: undefined, done: true }));
          if (done) return;
          text += decoder.decode(value);
        }
      })();
      const unlock = lockSqlite(path);
      try {
        await sleep(1_000); // ten checks, each failing on the lock
      } finally {
        unlock();
      }
      await sleep(300); // checks that succeed again
      controller.abort();
      await rest;
      expect(text).toContain("Hel");
      expect(text).not.toContain("access_revoked");
      expect(text).not.toContain('"error"');
    },
    30_000,
  );
});

import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp, testConfig } from "./helpers.js";
import { type RedisProcess, redisBinary, startRedis } from "./redis-process.js";
import { lastUsage } from "./two-servers.js";

const found = redisBinary();
if ("reason" in found) console.warn(`SKIPPING Redis outage tests: ${found.reason}`);

describe.skipIf("reason" in found)("Redis dying in the middle of a stream", () => {
  let redis: RedisProcess;
  let fake: FakeLlm;
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    redis = await startRedis((found as { path: string }).path);
    fake = await startFakeLlm();
    app = await buildApp(
      testConfig({
        llmServerUrls: [fake.url],
        redisUrl: redis.url,
        databasePath: join(redis.dir, "gateway.sqlite"),
      }),
    );
    base = await app.listen({ port: 0, host: "127.0.0.1" });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await fake?.close();
    await redis?.stop();
  });

  it("finishes the stream and writes its usage row; the failed settle is counted", async () => {
    const user = await signUp(app, "redis-mid-stream@example.org");
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(user.token), ...JSON_CT },
      body: JSON.stringify(chat("HOLD", { stream: true })),
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    expect(text).toContain("Hel");
    // Admitted through Redis; now it goes away before the answer ends (and its settle).
    await redis.stop("SIGKILL");
    fake.releaseHeld();
    for (let r = await reader.read(); !r.done; r = await reader.read())
      text += decoder.decode(r.value);
    expect(text).toContain("data: [DONE]");
    expect(text).not.toContain('"error"');
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !row; i++) {
      row = await lastUsage(app, user.userId);
      if (!row) await new Promise((r) => setTimeout(r, 50));
    }
    expect(row).toMatchObject({
      status: 200,
      outcome: "ok",
      promptTokens: 5,
      completionTokens: 3,
      quotaTokens: 8,
    });
    // The settle fails after the row is written (the client is not kept waiting for it).
    const failures = /^gateway_limit_settle_failures_total 1$/m;
    for (let i = 0; i < 100 && !failures.test(await app.services.metrics.render()); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(await app.services.metrics.render()).toMatch(failures);
    expect(app.services.limits.unsettledCount).toBe(1);
  }, 30_000);
});

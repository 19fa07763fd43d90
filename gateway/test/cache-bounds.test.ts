import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type CachedAnswer, encodeEntry, MemoryCache } from "../src/services/cache.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import { bearer, type Session, signUp, testConfig } from "./helpers.js";

const answer = (text: string): CachedAnswer => ({
  kind: "chat",
  model: "m",
  promptTokens: 1,
  completionTokens: 1,
  idPrefix: "chatcmpl-",
  json: { choices: [{ index: 0, message: { role: "assistant", content: text } }] },
});
const bytes = (a: CachedAnswer) => Buffer.byteLength(encodeEntry(a));

describe("in-process cache bounds", () => {
  it("does not store an entry over the byte bound (multi-byte text measured in bytes)", async () => {
    const small = answer("ok");
    const cache = new MemoryCache(10, 60_000, bytes(small) + 1);
    expect(await cache.set("a", small)).toBe(true);
    // "éé" has as many characters as "ok" but 2 more bytes: the bound counts bytes.
    expect(await cache.set("b", answer("éé"))).toBe(false);
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("a")).toEqual(small);
    expect(await cache.size()).toBe(1);
  });

  it("keeps at most maxEntries, evicting the least recently used", async () => {
    const cache = new MemoryCache(2, 60_000, 10_000);
    await cache.set("a", answer("a"));
    await cache.set("b", answer("b"));
    await cache.get("a"); // a is now the most recently used
    await cache.set("c", answer("c"));
    expect(await cache.size()).toBe(2);
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("a")).toBeDefined();
    expect(await cache.get("c")).toBeDefined();
  });
});

describe("CACHE_MAX_ENTRY_BYTES through the gateway", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let s: Session;
  const fakeAnswer = answer("Hello world");

  beforeAll(async () => {
    fake = await startFakeLlm();
    const base = testConfig();
    app = await buildApp(
      testConfig({
        llmServerUrls: [fake.url],
        // The fake's answer is a little over this bound; a shorter one fits.
        cache: { ...base.cache, maxEntryBytes: bytes({ ...fakeAnswer, model: "fake-model" }) - 1 },
      }),
    );
    s = await signUp(app, "bounds@example.org");
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  it("answers an oversized answer every time from upstream and counts it as too_large", async () => {
    const post = () =>
      app.inject({
        method: "POST",
        url: "/v1/chat/completions",
        headers: { ...bearer(s.token), "content-type": "application/json" },
        payload: { model: "fake-model", messages: [{ role: "user", content: "big" }], seed: 1 },
      });
    const first = await post();
    expect(first.statusCode).toBe(200);
    expect(first.headers["x-cache"]).toBe("MISS");
    await new Promise((r) => setTimeout(r, 20)); // the store is not awaited by the request
    const second = await post();
    expect(second.headers["x-cache"]).toBe("MISS");
    expect(fake.requests.filter((r) => r.path === "/v1/chat/completions")).toHaveLength(2);
    expect(await app.services.cache.size()).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await app.services.metrics.render()).toContain(
      'gateway_cache_stores_total{result="too_large"} 2',
    );
  });
});

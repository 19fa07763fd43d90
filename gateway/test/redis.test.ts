import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type CachedAnswer, encodeEntry, RedisCache } from "../src/services/cache.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  chat,
  createApiKey,
  JSON_CT,
  ORIGIN,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
  userWithLimits,
} from "./helpers.js";
import { type RedisProcess, redisBinary, startRedis } from "./redis-process.js";

const found = redisBinary();
if ("reason" in found) console.warn(`SKIPPING Redis tests: ${found.reason}`);

describe.skipIf("reason" in found)("Redis-backed counters and cache (two gateways)", () => {
  let redis: RedisProcess;
  let redisUrl: string;
  let fake: FakeLlm;
  let apps: FastifyInstance[] = [];
  let bases: string[] = [];
  let admin: Session;

  beforeAll(async () => {
    redis = await startRedis((found as { path: string }).path);
    redisUrl = redis.url;
    const dir = redis.dir;
    fake = await startFakeLlm();
    const databasePath = join(dir, "gateway.sqlite");
    for (let i = 0; i < 2; i++) {
      const app = await buildApp(testConfig({ llmServerUrls: [fake.url], redisUrl, databasePath }));
      bases.push(await app.listen({ port: 0, host: "127.0.0.1" }));
      apps.push(app);
    }
    admin = await signUpAdmin(apps[0] as FastifyInstance, "admin@example.org");
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    await fake?.close();
    await redis?.stop();
    apps = [];
    bases = [];
  });

  const userWith = (email: string, limits: Record<string, number>) =>
    userWithLimits(apps[0] as FastifyInstance, admin, email, limits);
  const post = (i: number, s: Session, body: unknown) =>
    fetch(`${bases[i % 2]}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(s.token), ...JSON_CT },
      body: JSON.stringify(body),
    });

  it("shares the per-minute limit between gateway instances", async () => {
    const s = await userWith("rpm-redis@example.org", { requestsPerMinute: 7 });
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => post(i, s, chat("hi"))));
    expect(results.filter((r) => r.status === 200)).toHaveLength(7);
    expect(results.filter((r) => r.status === 429)).toHaveLength(17);
  });

  it("never overspends a shared daily token quota", async () => {
    const s = await userWith("tok-redis@example.org", { tokensPerDay: 150 });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(i, s, chat("hi", { max_tokens: 3 }))),
    );
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 429).length).toBe(30 - ok);
    const usage = await (apps[1] as FastifyInstance).inject({
      method: "GET",
      url: "/api/user/usage",
      headers: bearer(s.token),
    });
    expect(usage.json().quota.tokensPerDay.used).toBe(ok * 8);
    expect(ok * 8).toBeLessThanOrEqual(150);
  });

  it("never overspends a per-model quota shared by two instances", async () => {
    const s = await userWith("model-redis@example.org", { requestsPerMinute: 0 });
    const set = await (apps[0] as FastifyInstance).inject({
      method: "POST",
      url: "/api/admin/model-limits",
      headers: { ...bearer(admin.token), ...JSON_CT },
      payload: { model: "fake-model", email: "model-redis@example.org", tokens_per_day: 120 },
    });
    expect(set.statusCode).toBe(200);
    // The other instance reads the rules again within AUTH_CACHE_TTL_MS.
    const caller = { userId: s.userId, role: "user" as const };
    const other = apps[1] as FastifyInstance;
    for (let i = 0; i < 100 && !(await other.modelAccess.tokenLimit(caller, "fake-model")); i++)
      await new Promise((r) => setTimeout(r, 50));
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(i, s, chat("hi", { max_tokens: 3 }))),
    );
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThan(0);
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBe(30 - ok);
    const body = (await (refused[0] as Response).json()) as { error: { message: string } };
    expect(body.error.message).toContain('model "fake-model"');
    const usage = await other.inject({
      method: "GET",
      url: "/api/user/usage",
      headers: bearer(s.token),
    });
    expect(usage.json().quota.models[0].tokensPerDay.used).toBe(ok * 8);
    expect(ok * 8).toBeLessThanOrEqual(120);
    await other.modelAccess.deleteLimit(set.json().id);
  });

  it("shares the response cache between instances, still per user", async () => {
    const s = await userWith("cache-redis@example.org", { requestsPerMinute: 0 });
    const other = await userWith("cache-redis-2@example.org", { requestsPerMinute: 0 });
    const body = chat("shared cache", { temperature: 0 });
    expect((await post(0, s, body)).headers.get("x-cache")).toBe("MISS");
    const hit = await post(1, s, body);
    expect(hit.headers.get("x-cache")).toBe("HIT");
    expect(
      ((await hit.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message
        .content,
    ).toBe("Hello world");
    expect((await post(1, other, body)).headers.get("x-cache")).toBe("MISS");
    const purged = await (apps[1] as FastifyInstance).inject({
      method: "DELETE",
      url: "/api/admin/cache",
      headers: bearer(admin.token),
    });
    expect(purged.json().purged).toBe(2);
    expect((await post(0, s, body)).headers.get("x-cache")).toBe("MISS");
  });

  it("shares an API key's own counter between instances and names the key in the 429", async () => {
    const app = apps[0] as FastifyInstance;
    const s = await userWith("key-redis@example.org", { requestsPerMinute: 0 });
    const { id, key } = await createApiKey(app, s);
    const put = await app.inject({
      method: "PUT",
      url: `/api/admin/api-keys/${id}/limits`,
      headers: { ...bearer(admin.token), ...JSON_CT },
      payload: { requestsPerMinute: 5 },
    });
    expect(put.statusCode).toBe(200);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => post(i, { ...s, token: key }, chat("hi"))),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(11);
    const body = (await (refused[0] as Response).json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/^Limit reached \(API key\): 5 requests per minute/);
    const seen = await (apps[1] as FastifyInstance).inject({
      method: "GET",
      url: `/api/admin/api-keys/${id}/limits`,
      headers: bearer(admin.token),
    });
    expect(seen.json().usage.requestsThisMinute).toBe(5);
  });

  it("RedisCache keeps at most maxEntries (oldest out) and never writes an entry over the byte bound", async () => {
    const redis = new Redis(redisUrl);
    try {
      const a = (text: string): CachedAnswer => ({
        kind: "completion",
        model: "m",
        promptTokens: 1,
        completionTokens: 1,
        idPrefix: "cmpl-",
        json: { choices: [{ index: 0, text }] },
      });
      const limit = Buffer.byteLength(encodeEntry(a("12345")));
      const cache = new RedisCache(redis, 3, 60_000, limit);
      await cache.purge();
      for (const k of ["k1", "k2", "k3", "k4", "k5"]) {
        expect(await cache.set(k, a(k))).toBe(true);
        await new Promise((r) => setTimeout(r, 2)); // distinct insertion times
      }
      expect(await cache.size()).toBe(3);
      expect(await cache.get("k1")).toBeUndefined();
      expect(await cache.get("k2")).toBeUndefined();
      expect(await cache.get("k5")).toEqual(a("k5"));
      expect(await cache.set("big", a("123456"))).toBe(false);
      expect(await cache.get("big")).toBeUndefined();
      expect(await redis.exists("gw:cache:big")).toBe(0);
      expect(await cache.size()).toBe(3);
      await cache.purge();
    } finally {
      redis.disconnect();
    }
  });
  const signInFrom = (i: number, ip: string, email: string, password: string) =>
    (apps[i % 2] as FastifyInstance).inject({
      method: "POST",
      url: "/api/auth/sign-in/email",
      headers: { origin: ORIGIN, ...JSON_CT, "x-forwarded-for": ip },
      payload: { email, password },
    });

  it("shares the sign-in throttle: failures on either gateway delay the pair on both", async () => {
    await signUp(apps[0] as FastifyInstance, "throttled-redis@example.org", "right-password-123");
    const attacker = "10.9.0.1";
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push(
        (await signInFrom(i, attacker, "throttled-redis@example.org", "wrong-password")).statusCode,
      );
    }
    expect(codes).toEqual([401, 401, 401, 401, 401]);
    for (const i of [0, 1]) {
      const res = await signInFrom(
        i,
        attacker,
        "throttled-redis@example.org",
        "right-password-123",
      );
      expect(res.statusCode, `gateway ${i}`).toBe(429);
      expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
      expect(res.json().code).toBe("TOO_MANY_ATTEMPTS");
    }
    // The owner, from an address of their own, is not held back.
    const owner = await signInFrom(
      1,
      "10.9.0.2",
      "throttled-redis@example.org",
      "right-password-123",
    );
    expect(owner.statusCode).toBe(200);
  });

  // Last in this file: it stops Redis.
  it("with Redis gone, an LLM request is a 503 LIMITS_UNAVAILABLE with Retry-After, not a 500", async () => {
    const user = await signUp(apps[0] as FastifyInstance, "redis-down@example.org");
    await redis.stop("SIGKILL");
    const res = await post(0, user, { model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toMatchObject({ error: { code: "limits_unavailable" } });
    // The sign-in throttle fails closed too: no password is checked while it cannot count.
    const signIn = await signInFrom(
      1,
      "10.9.0.3",
      "redis-down@example.org",
      "correct-horse-battery",
    );
    expect(signIn.statusCode).toBe(503);
    expect(signIn.headers["retry-after"]).toBe("5");
    expect(signIn.json().code).toBe("THROTTLE_UNAVAILABLE");
  }, 30_000);
});

import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LoginThrottle,
  MemoryThrottleStore,
  RedisThrottleStore,
  type ThrottleStore,
} from "../src/auth/throttle.js";
import { buildTestApp, JSON_CT, ORIGIN, signUp } from "./helpers.js";
import { type RedisProcess, redisBinary, startRedis } from "./redis-process.js";

const PASSWORD = "correct-horse-battery";

/** A raw HTTP request to the listening app: the request target is sent exactly as given. */
function raw(
  port: number,
  method: string,
  target: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method,
        path: target,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Signs in through the listening app from client `ip` (X-Forwarded-For; loopback is trusted). */
function signInFrom(
  port: number,
  ip: string,
  email: string,
  password: string,
  target = "/api/auth/sign-in/email",
  contentType = "application/json",
  body = contentType.includes("json")
    ? JSON.stringify({ email, password })
    : new URLSearchParams({ email, password }).toString(),
) {
  return raw(port, "POST", target, body, {
    origin: ORIGIN,
    "content-type": contentType,
    "x-forwarded-for": ip,
  });
}

describe("sign-in lock", { timeout: 60_000 }, () => {
  let app: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    app = await buildTestApp();
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
  }, 60_000);
  afterAll(async () => {
    await app.close();
  });

  it("holds for every spelling of the path and every body encoding", async () => {
    await signUp(app, "victim@example.org", PASSWORD);
    const attacker = "10.1.0.1";
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await signInFrom(port, attacker, "victim@example.org", `wrong-${i}-pw`)).status);
    }
    expect(codes).toEqual([401, 401, 401, 401, 401]);
    const locked = await signInFrom(port, attacker, "victim@example.org", PASSWORD);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers["retry-after"])).toBeGreaterThan(0);

    const spellings = [
      "/api/auth/./sign-in/email",
      "/api/auth/%2e/sign-in/email",
      "/api/auth/%2E/sign-in/email",
      "/api/auth/x/%2E%2E/sign-in/email",
      "/api/auth/x/../sign-in/email",
      "/api/auth//sign-in/email",
      "/api/auth/sign-in//email",
      "/api/auth/sign-in/email/",
      "/api/auth/sign-in/./email",
      "/api/auth/sign-in%2femail",
      "/api/auth/SIGN-IN/email",
      "/API/AUTH/sign-in/email",
      "/api/auth\\sign-in\\email",
      `http://127.0.0.1:${port}/api/auth/sign-in/email`,
      "http://evil.example/api/auth/sign-in/email",
      "/api/auth/sign-in/email?x=1",
      "/api/auth/sign-in/email#frag",
    ];
    for (const target of spellings) {
      const res = await signInFrom(port, attacker, "victim@example.org", PASSWORD, target);
      expect([404, 429], `${target}: ${res.status} ${res.body}`).toContain(res.status);
      expect(res.headers["set-cookie"], target).toBeUndefined();
    }
    for (const [contentType, body] of [
      ["application/x-www-form-urlencoded", undefined],
      ["multipart/form-data; boundary=x", undefined],
      ["text/plain", JSON.stringify({ email: "victim@example.org", password: PASSWORD })],
      ["application/json; charset=utf-8", undefined],
      ["application/vnd.api+json", undefined],
      ["application/JSON", undefined],
    ] as const) {
      const res = await signInFrom(
        port,
        attacker,
        "victim@example.org",
        PASSWORD,
        "/api/auth/sign-in/email",
        contentType,
        body,
      );
      expect(res.status, `${contentType}: ${res.body}`).not.toBe(200);
      expect(res.headers["set-cookie"], contentType).toBeUndefined();
    }
    // The email in another case or with spaces is the same account.
    for (const email of ["VICTIM@Example.org", " victim@example.org "]) {
      const res = await signInFrom(port, attacker, email, PASSWORD);
      expect(res.status, email).not.toBe(200);
    }
  });

  it("counts failures in the body better-auth reads (a byte-order mark, duplicate keys)", async () => {
    await signUp(app, "counted@example.org", PASSWORD);
    const ip = "10.2.0.1";
    const bodies = [
      (pw: string) => `\uFEFF${JSON.stringify({ email: "counted@example.org", password: pw })}`,
      (pw: string) =>
        `{"email":"decoy@example.org","email":"counted@example.org","password":"${pw}"}`,
    ];
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const body = bodies[i % 2]?.(`wrong-${i}-pw`) ?? "";
      const res = await signInFrom(
        port,
        ip,
        "",
        "",
        "/api/auth/sign-in/email",
        JSON_CT["content-type"],
        body,
      );
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const right = bodies[0]?.(PASSWORD) ?? "";
    const res = await signInFrom(
      port,
      ip,
      "",
      "",
      "/api/auth/sign-in/email",
      JSON_CT["content-type"],
      right,
    );
    expect(res.status).toBe(429);
  });

  it("does not lock the owner out: other IPs still sign in, known IPs even under a spread attack", async () => {
    await signUp(app, "owner@example.org", PASSWORD);
    const home = "10.3.0.2";
    expect((await signInFrom(port, home, "owner@example.org", PASSWORD)).status).toBe(200);
    // One attacker IP: only that IP is held back.
    for (let i = 0; i < 8; i++)
      await signInFrom(port, "10.3.0.1", "owner@example.org", "nope-nope");
    expect((await signInFrom(port, "10.3.0.1", "owner@example.org", PASSWORD)).status).toBe(429);
    expect((await signInFrom(port, "10.3.0.3", "owner@example.org", PASSWORD)).status).toBe(200);
    // Many attacker IPs: unknown IPs are held back for this account, the owner's are not.
    for (let i = 0; i < 25; i++) {
      await signInFrom(port, `10.4.0.${i + 1}`, "owner@example.org", "nope-nope");
    }
    const stranger = await signInFrom(port, "10.5.0.1", "owner@example.org", PASSWORD);
    expect(stranger.status).toBe(429);
    expect(Number(stranger.headers["retry-after"])).toBeGreaterThan(0);
    expect((await signInFrom(port, home, "owner@example.org", PASSWORD)).status).toBe(200);
    // Another account is not affected from that same stranger IP.
    await signUp(app, "bystander@example.org", PASSWORD);
    expect((await signInFrom(port, "10.5.0.1", "bystander@example.org", PASSWORD)).status).toBe(
      200,
    );
  });

  it("gives better-auth's own rate-limit answers a Retry-After", async () => {
    const prod = await buildTestApp({ appEnv: "production" });
    try {
      const statuses: number[] = [];
      let last: { headers: Record<string, unknown> } | undefined;
      for (let i = 0; i < 7; i++) {
        const res = await prod.inject({
          method: "POST",
          url: "/api/auth/sign-up/email",
          headers: { origin: ORIGIN, ...JSON_CT, "x-forwarded-for": "10.9.9.9" },
          payload: { email: `ratelimited-${i}@example.org`, password: PASSWORD, name: "R" },
        });
        statuses.push(res.statusCode);
        last = res;
      }
      expect(statuses.at(-1)).toBe(429);
      expect(Number(last?.headers["retry-after"])).toBeGreaterThan(0);
    } finally {
      await prod.close();
    }
  });
});

const redis = redisBinary();
if ("reason" in redis) console.warn(`SKIPPING the Redis throttle tests: ${redis.reason}`);

describe("LoginThrottle", { timeout: 60_000 }, () => {
  let server: RedisProcess | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    if ("reason" in redis) return;
    server = await startRedis(redis.path);
    client = new Redis(server.url);
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  const stores: [string, () => ThrottleStore | null][] = [
    ["memory", () => new MemoryThrottleStore()],
    // A fresh prefix per test: the tests share one redis-server.
    ["redis", () => (client ? new RedisThrottleStore(client, `t${Math.random()}:`) : null)],
  ];
  for (const [kind, makeStore] of stores) {
    it(`delays progressively per (account, IP), doubling up to the cap (${kind})`, async (t) => {
      const store = makeStore();
      if (!store) return t.skip();
      let now = 1_800_000_000_000;
      const th = new LoginThrottle({ now: () => now, store });
      const waits: number[] = [];
      for (let i = 0; i < 10; i++) {
        await th.fail("a", "ip");
        const wait = await th.retryAfter("a", "ip");
        waits.push(wait);
        now += wait * 1000;
      }
      expect(waits).toEqual([0, 0, 0, 0, 30, 60, 120, 240, 480, 900]);
      expect(await th.retryAfter("a", "other-ip")).toBe(0);
      // Quiet for the window after the last delay: counting starts again.
      now += 16 * 60_000;
      await th.fail("a", "ip");
      expect(await th.retryAfter("a", "ip")).toBe(0);
    });

    it(`a success clears its pair and makes the IP known to the account (${kind})`, async (t) => {
      const store = makeStore();
      if (!store) return t.skip();
      let now = 1_800_000_000_000;
      const th = new LoginThrottle({ now: () => now, maxPerAccount: 3, store });
      await th.succeed("a", "home");
      for (const ip of ["x1", "x2", "x3"]) await th.fail("a", ip);
      expect(await th.retryAfter("a", "x4")).toBeGreaterThan(0);
      expect(await th.retryAfter("a", "home")).toBe(0);
      now += 31 * 24 * 3_600_000;
      for (const ip of ["x1", "x2", "x3"]) await th.fail("a", ip);
      expect(await th.retryAfter("a", "home")).toBeGreaterThan(0);
    });
  }
});

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import { estimatePromptTokens } from "../src/services/completions.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  chat,
  DATABASES,
  databaseConfig,
  JSON_CT,
  postgresMissing,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
  userWithLimits,
} from "./helpers.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";
import { dataEvents } from "./two-servers.js";

const noPostgres = await postgresMissing();

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`limits per user (${database})`, () => {
    let fake: FakeLlm;
    let app: FastifyInstance;
    let base: string;
    let admin: Session;
    let db: Awaited<ReturnType<typeof databaseConfig>>;

    beforeAll(async () => {
      fake = await startFakeLlm();
      // A file, not :memory:, so bin/admin (another connection) sees the same database.
      db = await databaseConfig(
        database,
        join(mkdtempSync(join(tmpdir(), "gateway-limits-")), "g.sqlite"),
      );
      app = await buildApp(testConfig({ llmServerUrls: [fake.url], ...db }));
      base = await app.listen({ port: 0, host: "127.0.0.1" });
      admin = await signUpAdmin(app, "admin@example.org");
    }, PG_SETUP_TIMEOUT);
    afterAll(async () => {
      await app.close();
      await fake.close();
    });

    const userWith = (email: string, limits: Record<string, number>) =>
      userWithLimits(app, admin, email, limits);

    const post = (s: Session, body: unknown) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
      });

    async function usage(s: Session) {
      const res = await app.inject({
        method: "GET",
        url: "/api/user/usage",
        headers: bearer(s.token),
      });
      expect(res.statusCode).toBe(200);
      return res.json();
    }

    it("refuses requests over the per-minute limit with 429, Retry-After and RateLimit-*", async () => {
      const s = await userWith("rpm@example.org", { requestsPerMinute: 10 });
      const results = await Promise.all(Array.from({ length: 30 }, () => post(s, chat("hi"))));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((x) => x === 200)).toHaveLength(10);
      expect(statuses.filter((x) => x === 429)).toHaveLength(20);
      const refused = results.find((r) => r.status === 429) as Response;
      const retry = Number(refused.headers.get("retry-after"));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(refused.headers.get("ratelimit-limit")).toBe("10");
      expect(refused.headers.get("ratelimit-remaining")).toBe("0");
      expect(refused.headers.get("ratelimit-policy")).toBe("10;w=60");
      const body = (await refused.json()) as { error: { message: string; type: string } };
      expect(body.error.type).toBe("rate_limit_error");
      expect(body.error.message).toMatch(
        /10 requests per minute; resets at \d{4}-.*Z \(in \d+ s\)/,
      );
      const u = await usage(s);
      expect(u.quota.requestsPerMinute).toMatchObject({ used: 10, limit: 10, remaining: 0 });
      expect(u.totals).toMatchObject({ requests: 30, rejected: 20 });
    });

    it("never overspends a daily token quota under many parallel requests", async () => {
      const limit = 200;
      const s = await userWith("tokens@example.org", { tokensPerDay: limit });
      const results = await Promise.all(
        Array.from({ length: 40 }, () => post(s, chat("hi", { max_tokens: 3 }))),
      );
      const ok = results.filter((r) => r.status === 200).length;
      const refused = results.filter((r) => r.status === 429);
      expect(ok).toBeGreaterThanOrEqual(Math.floor(limit / (estimatePromptTokens(chat("hi")) + 3)));
      expect(refused.length).toBe(40 - ok);
      expect(refused.length).toBeGreaterThan(0);
      const msg = ((await (refused[0] as Response).json()) as { error: { message: string } }).error
        .message;
      expect(msg).toContain(`${limit} tokens per day`);
      // The fake charges 5 prompt + 3 completion tokens per answer; the counters are exact.
      const u = await usage(s);
      expect(u.quota.tokensPerDay.used).toBe(ok * 8);
      expect(u.quota.tokensPerDay.used).toBeLessThanOrEqual(limit);
      expect(u.totals.promptTokens + u.totals.completionTokens).toBe(ok * 8);
      expect(u.quota.tokensPerDay.resetAt).toMatch(/T00:00:00\.000Z$/);
    });

    it("a restarted gateway starts the day's token counter from the usage table", async () => {
      const s = await userWith("restart@example.org", { tokensPerDay: 1000 });
      for (let i = 0; i < 3; i++)
        expect((await post(s, chat("hi", { max_tokens: 3 }))).status).toBe(200);
      expect((await usage(s)).quota.tokensPerDay.used).toBe(24);
      const again = await buildApp(testConfig({ llmServerUrls: [fake.url], ...db }));
      try {
        const res = await again.inject({
          method: "GET",
          url: "/api/user/usage",
          headers: bearer(s.token),
        });
        expect(res.json().quota.tokensPerDay).toMatchObject({
          used: 24,
          limit: 1000,
          remaining: 976,
        });
      } finally {
        await again.close();
      }
    });

    it("cuts a stream that crosses the remaining quota and records the usage up to the cut", async () => {
      const body = chat("hello there", { stream: true });
      const estimate = estimatePromptTokens(body);
      const s = await userWith("cut@example.org", { tokensPerDay: estimate + 2 });
      const res = await post(s, body);
      expect(res.status).toBe(200);
      const text = await res.text();
      const events = dataEvents(text);
      expect(events).not.toContain("[DONE]");
      const contents = events
        .slice(0, -1)
        .map((e) => JSON.parse(e).choices[0].delta.content as string);
      expect(contents).toEqual(["Hel", "lo"]);
      const last = JSON.parse(events.at(-1) ?? "{}");
      expect(last.error).toMatchObject({ code: "tokens_per_day", type: "rate_limit_error" });
      await app.db.drain();
      const row = await app.db.kysely
        .selectFrom("usage_record")
        .selectAll()
        .where("userId", "=", s.userId)
        .orderBy("id", "desc")
        .executeTakeFirst();
      // Billed llm-server's prompt count (the fake's x-prompt-tokens: 5), not the estimate.
      expect(row).toMatchObject({
        outcome: "cut",
        promptTokens: 5,
        completionTokens: 2,
        quotaTokens: 7,
      });
      const u = await usage(s);
      expect(u.quota.tokensPerDay).toMatchObject({ used: 7, remaining: estimate + 2 - 7 });
      expect((await post(s, chat("again"))).status).toBe(429);
    });

    it("limits concurrent streams and frees the slot when a stream ends", async () => {
      const s = await userWith("conc@example.org", { concurrentStreams: 1 });
      const controller = new AbortController();
      const first = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(chat("SLOW", { stream: true })),
        signal: controller.signal,
      });
      expect(first.status).toBe(200);
      const second = await post(s, chat("hi"));
      expect(second.status).toBe(429);
      expect(((await second.json()) as { error: { code: string } }).error.code).toBe(
        "concurrent_streams",
      );
      const aborted = fake.nextAbort();
      controller.abort();
      await aborted;
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = (await post(s, chat("hi"))).status;
      }
      expect(status).toBe(200);
    });

    it("caps max_tokens per request: refuses more, fills it in when absent", async () => {
      const s = await userWith("cap@example.org", { maxTokens: 10 });
      const over = await post(s, chat("hi", { max_tokens: 11 }));
      expect(over.status).toBe(400);
      expect(((await over.json()) as { error: { message: string } }).error.message).toContain(
        "limit of 10 tokens per request",
      );
      expect((await post(s, chat("hi"))).status).toBe(200);
      expect(fake.requests.at(-1)?.body?.max_tokens).toBe(10);
    });

    it("lets admins read and reset overrides; users cannot", async () => {
      const s = await userWith("reset@example.org", { tokensPerDay: 5, maxTokens: 7 });
      const denied = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${s.userId}/limits`,
        headers: { ...bearer(s.token), ...JSON_CT },
        payload: { tokensPerDay: 0 },
      });
      expect(denied.statusCode).toBe(403);
      const res = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${s.userId}/limits`,
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: { tokensPerDay: null },
      });
      expect(res.json()).toEqual({
        userId: s.userId,
        overrides: {
          requestsPerMinute: null,
          tokensPerDay: null,
          concurrentStreams: null,
          maxTokens: 7,
        },
        effective: { requestsPerMinute: 0, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 7 },
      });
      const bad = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${s.userId}/limits`,
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: { tokensPerDay: -1 },
      });
      expect(bad.statusCode).toBe(400);
    });

    it("bin/admin set-limits writes the overrides the gateway enforces", async () => {
      const s = await signUp(app, "cli-limits@example.org");
      const lines = await runAdmin(
        [
          "set-limits",
          "--email",
          "cli-limits@example.org",
          "--requests-per-minute",
          "1",
          "--max-tokens",
          "0",
        ],
        testConfig(db),
      );
      expect(lines[0]).toBe(
        "limits of cli-limits@example.org: 1 requests/min, unlimited tokens/day, unlimited concurrent, unlimited max tokens/request",
      );
      expect((await post(s, chat("hi"))).status).toBe(200);
      expect((await post(s, chat("hi"))).status).toBe(429);
      await expect(
        runAdmin(
          ["set-limits", "--email", "cli-limits@example.org", "--tokens-per-day", "lots"],
          testConfig(db),
        ),
      ).rejects.toThrow(/--tokens-per-day must be a whole number/);
    });
  });

import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimateAnalyzeTokens } from "../src/services/metered.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  buildTestApp,
  DATABASES,
  JSON_CT,
  postgresMissing,
  type Session,
  signUpAdmin,
  userWithLimits,
} from "./helpers.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";

const noPostgres = await postgresMissing();

/** Model lists and /analyze pass the limits and leave one usage row each, like completions. */
for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `limits and usage rows on models and analyze (${database})`,
    () => {
      let fake: FakeLlm;
      let app: FastifyInstance;
      let base: string;
      let admin: Session;

      beforeAll(async () => {
        fake = await startFakeLlm();
        app = await buildTestApp({ database, llmServerUrls: [fake.url] });
        base = await app.listen({ port: 0, host: "127.0.0.1" });
        admin = await signUpAdmin(app, "admin@example.org");
      }, PG_SETUP_TIMEOUT);
      afterAll(async () => {
        await app.close();
        await fake.close();
      });

      const userWith = (email: string, limits: Record<string, number>) =>
        userWithLimits(app, admin, email, limits);
      /** The user's usage rows, oldest first (after the writes in flight). */
      const rows = async (s: Session): Promise<Record<string, unknown>[]> => {
        await app.db.drain();
        return app.db.kysely
          .selectFrom("usage_record")
          .selectAll()
          .where("userId", "=", s.userId)
          .orderBy("id")
          .execute();
      };
      const get = (s: Session, url: string) =>
        app.inject({ method: "GET", url, headers: bearer(s.token) });
      const analyze = (s: Session, payload: Record<string, unknown>) =>
        app.inject({
          method: "POST",
          url: "/api/llm/analyze",
          headers: { ...bearer(s.token), ...JSON_CT },
          payload,
        });
      const calls = (path: string) => fake.requests.filter((r) => r.path === path).length;

      it("model lists count against requests per minute and are recorded", async () => {
        const s = await userWith("models@example.org", { requestsPerMinute: 3 });
        expect((await get(s, "/v1/models")).statusCode).toBe(200);
        expect((await get(s, "/api/models")).statusCode).toBe(200);
        expect((await get(s, "/api/llm/models")).statusCode).toBe(200);
        const before = calls("/v1/models");
        const v1 = await get(s, "/v1/models");
        expect(v1.statusCode).toBe(429);
        expect(v1.json()).toMatchObject({
          error: { code: "requests_per_minute", type: "rate_limit_error", param: null },
        });
        expect(v1.headers["retry-after"]).toBeDefined();
        const api = await get(s, "/api/models");
        expect(api.statusCode).toBe(429);
        expect(api.json().error.code).toBe("REQUESTS_PER_MINUTE");
        expect(calls("/v1/models")).toBe(before); // refused before reaching llm-server
        const r = await rows(s);
        expect(r.map((x) => [x.route, x.status, x.outcome])).toEqual([
          ["/v1/models", 200, "ok"],
          ["/api/models", 200, "ok"],
          ["/api/llm/models", 200, "ok"],
          ["/v1/models", 429, "rejected"],
          ["/api/models", 429, "rejected"],
        ]);
        expect(r.slice(0, 3).every((x) => x.server === fake.url)).toBe(true);
        expect(r.every((x) => typeof x.durationMs === "number" && x.quotaTokens === 0)).toBe(true);
        // They name no model: in the totals, not as a row of the by-model breakdown.
        const byModel = await app.services.usage.aggregate(0, Date.now() + 1, "model", s.userId);
        expect(byModel.totals.requests).toBe(5);
        expect(byModel.rows).toEqual([]);
      });

      it("analyze charges llm-server's token_count (once more per label) against tokens per day", async () => {
        const s = await userWith("analyze@example.org", { tokensPerDay: 1000 });
        const res = await analyze(s, { text: "hi", labels: ["a", "b"] });
        expect(res.statusCode).toBe(200);
        // The fake reports token_count 1; two labels score the text twice more.
        const usage = (await get(s, "/api/user/usage")).json();
        expect(usage.quota.tokensPerDay.used).toBe(3);
        expect((await rows(s)).at(-1)).toMatchObject({
          route: "/api/llm/analyze",
          model: "fake-model",
          promptTokens: 3,
          quotaTokens: 3,
          status: 200,
          outcome: "ok",
          server: fake.url,
        });
      });

      it("analyze is refused when less than its estimate remains of the day, before llm-server", async () => {
        const body = { text: "some text to score", labels: ["x"] };
        const s = await userWith("analyze-tokens@example.org", {
          tokensPerDay: estimateAnalyzeTokens(body) - 1,
        });
        const before = calls("/analyze");
        const res = await app.inject({
          method: "POST",
          url: "/api/analyze",
          headers: { ...bearer(s.token), ...JSON_CT },
          payload: body,
        });
        expect(res.statusCode).toBe(429);
        expect(res.json().error.code).toBe("TOKENS_PER_DAY");
        expect(calls("/analyze")).toBe(before);
        expect((await rows(s)).at(-1)).toMatchObject({ route: "/api/analyze", status: 429 });
      });

      it("analyze refuses amplifying prompts at the edge, before anything is reserved", async () => {
        const s = await userWith("analyze-edge@example.org", { tokensPerDay: 1_000_000 });
        const before = calls("/analyze");
        const twice = await analyze(s, {
          text: "hi",
          template: "{text} and {text}",
          labels: ["a"],
        });
        expect(twice.statusCode).toBe(400);
        expect(twice.json().error).toMatchObject({ code: "INVALID_TEMPLATE" });
        expect(twice.json().error.message).toContain("{text} only once");
        // 100,000 characters pass the length check, but in UTF-8 they are 200,000 bytes.
        const wide = await analyze(s, { text: "é".repeat(100_000) });
        expect(wide.statusCode).toBe(400);
        expect(wide.json().error).toMatchObject({ code: "PROMPT_TOO_LARGE" });
        const labels = Array.from({ length: 21 }, (_, i) => `label ${i}`);
        expect((await analyze(s, { text: "hi", labels })).statusCode).toBe(400);
        expect(calls("/analyze")).toBe(before);
        expect((await get(s, "/api/user/usage")).json().quota.tokensPerDay.used).toBe(0);
      });

      it("a refused analyze is charged its text and counts as a request", async () => {
        const s = await userWith("analyze-4xx@example.org", {
          requestsPerMinute: 2,
          tokensPerDay: 1000,
        });
        const body = { text: "ERROR400 please", labels: ["a", "b"] };
        const refused = await analyze(s, body);
        expect(refused.statusCode).toBe(400);
        expect(refused.json().error.message).toBe("text too long");
        const onePass = estimateAnalyzeTokens({ text: body.text });
        expect((await rows(s)).at(-1)).toMatchObject({ status: 400, quotaTokens: onePass });
        expect((await get(s, "/api/user/usage")).json().quota.tokensPerDay.used).toBe(onePass);
        expect((await analyze(s, body)).statusCode).toBe(400);
        const third = await analyze(s, body);
        expect(third.statusCode).toBe(429);
        expect(third.json().error.code).toBe("REQUESTS_PER_MINUTE");
      });

      it("analyze shares requests per minute with completions and takes a concurrency slot", async () => {
        const s = await userWith("analyze-rpm@example.org", { requestsPerMinute: 2 });
        const chat = await app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: { ...bearer(s.token), ...JSON_CT },
          payload: { messages: [{ role: "user", content: "hi" }] },
        });
        expect(chat.statusCode).toBe(200);
        expect((await analyze(s, { text: "hi" })).statusCode).toBe(200);
        const third = await analyze(s, { text: "hi" });
        expect(third.statusCode).toBe(429);
        expect(third.json().error.code).toBe("REQUESTS_PER_MINUTE");

        const c = await userWith("analyze-conc@example.org", { concurrentStreams: 1 });
        const hold = new AbortController();
        const slow = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { ...bearer(c.token), ...JSON_CT },
          body: JSON.stringify({ messages: [{ role: "user", content: "SLOW" }], stream: true }),
          signal: hold.signal,
        });
        expect(slow.status).toBe(200);
        const busy = await analyze(c, { text: "hi" });
        expect(busy.statusCode).toBe(429);
        expect(busy.json().error.code).toBe("CONCURRENT_STREAMS");
        hold.abort();
      });
    },
  );

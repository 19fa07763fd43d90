import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  buildTestApp,
  chat,
  DATABASES,
  JSON_CT,
  postgresMissing,
  type Session,
  signUp,
  signUpAdmin,
} from "./helpers.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";
import { dataEvents } from "./two-servers.js";

const noPostgres = await postgresMissing();

const upstreamCount = (f: FakeLlm) =>
  f.requests.filter((r) => r.path === "/v1/chat/completions").length;

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `response cache, usage analytics and metrics (${database})`,
    () => {
      let fake: FakeLlm;
      let app: FastifyInstance;
      let base: string;
      let admin: Session;
      let alice: Session;
      let bob: Session;

      beforeAll(async () => {
        fake = await startFakeLlm();
        app = await buildTestApp({ database, llmServerUrls: [fake.url] });
        base = await app.listen({ port: 0, host: "127.0.0.1" });
        admin = await signUpAdmin(app, "admin@example.org");
        alice = await signUp(app, "alice@example.org");
        bob = await signUp(app, "bob@example.org");
      }, PG_SETUP_TIMEOUT);
      afterAll(async () => {
        await app.close();
        await fake.close();
      });

      const post = (s: Session, body: unknown) =>
        fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { ...bearer(s.token), ...JSON_CT },
          body: JSON.stringify(body),
        });

      it("answers a repeated deterministic request from the cache, per user, as JSON or stream", async () => {
        const body = chat("cache me", { temperature: 0 });
        const first = await post(alice, body);
        expect(first.headers.get("x-cache")).toBe("MISS");
        const firstJson = (await first.json()) as { choices: { message: { content: string } }[] };
        const n = upstreamCount(fake);
        const hit = await post(alice, body);
        expect(hit.headers.get("x-cache")).toBe("HIT");
        const hitJson = (await hit.json()) as typeof firstJson & { usage: unknown };
        expect(hitJson.choices[0]?.message.content).toBe(firstJson.choices[0]?.message.content);
        expect(upstreamCount(fake)).toBe(n);

        // A stream is answered from a stream's entry (its payloads), the JSON answer from a
        // JSON one: each hit is the miss it replays.
        const missed = await post(alice, { ...body, stream: true });
        expect(missed.headers.get("x-cache")).toBe("MISS");
        await missed.text();
        const n2 = upstreamCount(fake);
        const streamed = await post(alice, { ...body, stream: true });
        expect(streamed.headers.get("x-cache")).toBe("HIT");
        expect(streamed.headers.get("content-type")).toContain("text/event-stream");
        const text = await streamed.text();
        const content = dataEvents(text)
          .filter((d) => d !== "[DONE]")
          .map((d) => JSON.parse(d).choices?.[0]?.delta?.content ?? "")
          .join("");
        expect(content).toBe("Hello world");
        expect(text.trim().endsWith("data: [DONE]")).toBe(true);
        expect(upstreamCount(fake)).toBe(n2);

        // Another user never sees Alice's entry.
        const other = await post(bob, body);
        expect(other.headers.get("x-cache")).toBe("MISS");
        expect(upstreamCount(fake)).toBe(n2 + 1);
        // A different sampling parameter is a different entry; a random request is not cached.
        expect((await post(alice, { ...body, top_p: 0.5 })).headers.get("x-cache")).toBe("MISS");
        expect((await post(alice, chat("cache me"))).headers.get("x-cache")).toBeNull();
      });

      it("never stores errors or cut-off answers, and admins can purge it", async () => {
        const bad = chat("ERROR400", { temperature: 0 });
        expect((await post(alice, bad)).status).toBe(400);
        expect((await post(alice, bad)).headers.get("x-cache")).toBe("MISS");
        const failing = chat("MIDFAIL", { temperature: 0, stream: true });
        await (await post(alice, failing)).text();
        expect((await post(alice, failing)).headers.get("x-cache")).toBe("MISS");

        const body = chat("purge me", { seed: 7 });
        await (await post(bob, body)).text();
        expect((await post(bob, body)).headers.get("x-cache")).toBe("HIT");
        const denied = await app.inject({
          method: "DELETE",
          url: "/api/admin/cache",
          headers: bearer(bob.token),
        });
        expect(denied.statusCode).toBe(403);
        const purged = await app.inject({
          method: "DELETE",
          url: "/api/admin/cache",
          headers: bearer(admin.token),
        });
        expect(purged.json().purged).toBeGreaterThan(0);
        expect((await post(bob, body)).headers.get("x-cache")).toBe("MISS");
      });

      it("counts cache hits in usage without charging the quota", async () => {
        const res = await app.inject({
          method: "GET",
          url: "/api/user/usage",
          headers: bearer(alice.token),
        });
        const u = res.json();
        expect(u.totals.cacheHits).toBe(2);
        expect(u.totals.cacheHitRate).toBeGreaterThan(0);
        await app.db.drain();
        const rows = await app.db.kysely
          .selectFrom("usage_record")
          .select(["quotaTokens", "promptTokens", "server"])
          .where("userId", "=", alice.userId)
          .where("cacheHit", "=", 1)
          .execute();
        expect(rows).toHaveLength(2);
        expect(
          rows.every((r) => r.quotaTokens === 0 && r.promptTokens === 5 && r.server === null),
        ).toBe(true);
        const served = await app.db.kysely
          .selectFrom("usage_record")
          .select(["server", "ttftMs"])
          .where("userId", "=", alice.userId)
          .where("cacheHit", "=", 0)
          .where("status", "=", 200)
          .limit(1)
          .executeTakeFirstOrThrow();
        expect(served.server).toBe(fake.url);
        expect(served.ttftMs).toBeGreaterThanOrEqual(0);
        expect(u.days.at(-1)).toMatchObject({ day: new Date().toISOString().slice(0, 10) });
        expect(u.days).toHaveLength(30);
      });

      it("aggregates usage for admins by user, day and model", async () => {
        const get = (q: string, s = admin) =>
          app.inject({ method: "GET", url: `/api/admin/usage${q}`, headers: bearer(s.token) });
        expect((await get("", alice)).statusCode).toBe(403);
        const byUser = (await get("?groupBy=user")).json();
        const aliceRow = byUser.rows.find(
          (r: { email: string }) => r.email === "alice@example.org",
        );
        expect(aliceRow.requests).toBeGreaterThanOrEqual(8);
        expect(aliceRow.cacheHits).toBe(2);
        expect(aliceRow.errors).toBeGreaterThanOrEqual(1);
        expect(aliceRow.latencyP50Ms).toBeGreaterThanOrEqual(0);
        expect(aliceRow.latencyP99Ms).toBeGreaterThanOrEqual(aliceRow.latencyP50Ms);
        const byModel = (await get("?groupBy=model")).json();
        expect(byModel.rows.map((r: { model: string }) => r.model)).toContain("fake-model");
        expect(byModel.totals.requests).toBe(byUser.totals.requests);
        const future = (
          await get("?groupBy=day&from=2999-01-01T00:00:00Z&to=2999-01-02T00:00:00Z")
        ).json();
        expect(future.totals.requests).toBe(0);
        expect((await get("?from=2999-01-02T00:00:00Z&to=2999-01-01T00:00:00Z")).statusCode).toBe(
          400,
        );
      });

      it("exposes Prometheus metrics per route, status and model", async () => {
        const res = await app.inject({ method: "GET", url: "/metrics" });
        expect(res.statusCode).toBe(200);
        expect(res.body).toMatch(
          /gateway_llm_requests_total\{cache="hit",model="fake-model",route="\/v1\/chat\/completions",status="200"\} 3/,
        );
        expect(res.body).toContain('gateway_cache_lookups_total{result="hit"}');
        expect(res.body).toMatch(
          /gateway_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status="400"\} \d+/,
        );
        expect(res.body).toContain(`gateway_llm_server_outstanding{server="${fake.url}"} 0`);
        // Node's own: process CPU and memory, event-loop delay.
        expect(res.body).toMatch(/^process_cpu_seconds_total \d/m);
        expect(res.body).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
        const remote = await app.inject({
          method: "GET",
          url: "/metrics",
          remoteAddress: "10.1.2.3",
        });
        expect(remote.statusCode).toBe(403);
      });
    },
  );

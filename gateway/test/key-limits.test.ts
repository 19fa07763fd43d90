import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  chat,
  createApiKey,
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

const noPostgres = await postgresMissing();

/** Per-API-key limits: set by admins (API and CLI), enforced together with the user's. */
for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`limits per API key (${database})`, () => {
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
        join(mkdtempSync(join(tmpdir(), "gateway-key-limits-")), "g.sqlite"),
      );
      app = await buildApp(testConfig({ llmServerUrls: [fake.url], ...db }));
      base = await app.listen({ port: 0, host: "127.0.0.1" });
      admin = await signUpAdmin(app, "admin@example.org");
    }, PG_SETUP_TIMEOUT);
    afterAll(async () => {
      await app.close();
      await fake.close();
    });

    /** A user (with optional user limits) and one API key of theirs. */
    async function userAndKey(email: string, userLimits: Record<string, number> = {}) {
      const s =
        Object.keys(userLimits).length > 0
          ? await userWithLimits(app, admin, email, userLimits)
          : await signUp(app, email);
      return { s, ...(await createApiKey(app, s)) };
    }
    const putKeyLimits = (id: string, payload: Record<string, unknown>, token = admin.token) =>
      app.inject({
        method: "PUT",
        url: `/api/admin/api-keys/${id}/limits`,
        headers: { ...bearer(token), ...JSON_CT },
        payload,
      });
    const keyLimits = async (id: string) =>
      (
        await app.inject({
          method: "GET",
          url: `/api/admin/api-keys/${id}/limits`,
          headers: bearer(admin.token),
        })
      ).json();
    const post = (token: string, body: unknown) =>
      fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(token), ...JSON_CT },
        body: JSON.stringify(body),
      });
    const userUsage = async (s: Session) =>
      (
        await app.inject({ method: "GET", url: "/api/user/usage", headers: bearer(s.token) })
      ).json();

    it("admins set a key's limits with PUT; unknown keys are 404, extra fields 400, users 403", async () => {
      const { s, id } = await userAndKey("put@example.org");
      const res = await putKeyLimits(id, { requestsPerMinute: 5, maxTokens: 0 });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        apiKeyId: id,
        userId: s.userId,
        overrides: {
          requestsPerMinute: 5,
          tokensPerDay: null,
          concurrentStreams: null,
          maxTokens: 0,
        },
        ownerOverrides: {
          requestsPerMinute: null,
          tokensPerDay: null,
          concurrentStreams: null,
          maxTokens: null,
        },
        effective: { requestsPerMinute: 5, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 0 },
        usage: { requestsThisMinute: 0, tokensToday: 0, concurrent: 0 },
      });
      // PUT replaces: what is left out is cleared.
      expect((await putKeyLimits(id, { tokensPerDay: 50 })).json().overrides).toEqual({
        requestsPerMinute: null,
        tokensPerDay: 50,
        concurrentStreams: null,
        maxTokens: null,
      });
      expect((await putKeyLimits("no-such-key", { requestsPerMinute: 1 })).statusCode).toBe(404);
      const notFound = await app.inject({
        method: "GET",
        url: "/api/admin/api-keys/no-such-key/limits",
        headers: bearer(admin.token),
      });
      expect(notFound.statusCode).toBe(404);
      expect(notFound.json().error.code).toBe("NOT_FOUND");
      for (const extra of [
        { userId: admin.userId },
        { subject: "user:x" },
        { requestsPerMinute: -1 },
      ]) {
        expect((await putKeyLimits(id, extra)).statusCode).toBe(400);
      }
      expect((await keyLimits(id)).userId).toBe(s.userId); // the owner never changes
      expect((await putKeyLimits(id, { requestsPerMinute: 1 }, s.token)).statusCode).toBe(403);
    });

    it("admins list a user's keys with each key's own limits", async () => {
      const { s, id, key } = await userAndKey("list-keys@example.org");
      await putKeyLimits(id, { concurrentStreams: 2 });
      const res = await app.inject({
        method: "GET",
        url: `/api/admin/users/${s.userId}/api-keys`,
        headers: bearer(admin.token),
      });
      expect(res.statusCode).toBe(200);
      const keys = res.json().keys as Record<string, unknown>[];
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({
        id,
        name: "k",
        limits: {
          requestsPerMinute: null,
          tokensPerDay: null,
          concurrentStreams: 2,
          maxTokens: null,
        },
      });
      expect(JSON.stringify(keys)).not.toContain(key); // never the key itself
      const missing = await app.inject({
        method: "GET",
        url: "/api/admin/users/nobody/api-keys",
        headers: bearer(admin.token),
      });
      expect(missing.statusCode).toBe(404);
      const denied = await app.inject({
        method: "GET",
        url: `/api/admin/users/${s.userId}/api-keys`,
        headers: bearer(s.token),
      });
      expect(denied.statusCode).toBe(403);
    });

    it("a key's requests-per-minute counter is exact under parallel requests; the user is untouched", async () => {
      const { s, id, key } = await userAndKey("key-rpm@example.org");
      expect((await putKeyLimits(id, { requestsPerMinute: 4 })).statusCode).toBe(200);
      const results = await Promise.all(Array.from({ length: 20 }, () => post(key, chat("hi"))));
      expect(results.filter((r) => r.status === 200)).toHaveLength(4);
      const refused = results.filter((r) => r.status === 429);
      expect(refused).toHaveLength(16);
      const body = (await (refused[0] as Response).json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/^Limit reached \(API key\): 4 requests per minute;/);
      expect((await keyLimits(id)).usage.requestsThisMinute).toBe(4);
      // The user's own session is not held by the key's limit.
      expect((await post(s.token, chat("hi"))).status).toBe(200);
      expect((await userUsage(s)).quota.requestsPerMinute.used).toBe(5);
    });

    it("the tighter user limit refuses first, naming the user, and the key counter does not move", async () => {
      const { id, key } = await userAndKey("user-tighter@example.org", { requestsPerMinute: 2 });
      expect((await putKeyLimits(id, { requestsPerMinute: 10 })).statusCode).toBe(200);
      const results = await Promise.all(Array.from({ length: 8 }, () => post(key, chat("hi"))));
      expect(results.filter((r) => r.status === 200)).toHaveLength(2);
      const refused = results.find((r) => r.status === 429) as Response;
      const body = (await refused.json()) as { error: { message: string; code: string } };
      expect(body.error.code).toBe("requests_per_minute");
      expect(body.error.message).toMatch(/^Limit reached \(user\): 2 requests per minute;/);
      expect((await keyLimits(id)).usage.requestsThisMinute).toBe(2);
    });

    it("never overspends a key's daily tokens under parallel requests; both counters are exact", async () => {
      const { s, id, key } = await userAndKey("key-tokens@example.org");
      const limit = 150;
      expect((await putKeyLimits(id, { tokensPerDay: limit })).statusCode).toBe(200);
      const results = await Promise.all(
        Array.from({ length: 30 }, () => post(key, chat("hi", { max_tokens: 3 }))),
      );
      const ok = results.filter((r) => r.status === 200).length;
      expect(ok).toBeGreaterThan(0);
      expect(results.filter((r) => r.status === 429)).toHaveLength(30 - ok);
      // The fake charges 5 prompt + 3 completion tokens per answer.
      const k = await keyLimits(id);
      expect(k.usage.tokensToday).toBe(ok * 8);
      expect(k.usage.tokensToday).toBeLessThanOrEqual(limit);
      expect(k.usage.concurrent).toBe(0);
      expect((await userUsage(s)).quota.tokensPerDay.used).toBe(ok * 8);
      const refused = results.find((r) => r.status === 429) as Response;
      const msg = ((await refused.json()) as { error: { message: string } }).error.message;
      expect(msg).toContain(`(API key): ${limit} tokens per day`);
    });

    it("a key's max_tokens cap applies to requests made with it", async () => {
      const { s, id, key } = await userAndKey("key-cap@example.org");
      expect((await putKeyLimits(id, { maxTokens: 7 })).statusCode).toBe(200);
      expect((await post(key, chat("hi", { max_tokens: 8 }))).status).toBe(400);
      expect((await post(key, chat("hi"))).status).toBe(200);
      expect(fake.requests.at(-1)?.body?.max_tokens).toBe(7);
      expect((await post(s.token, chat("hi", { max_tokens: 8 }))).status).toBe(200);
    });

    it("a key's owner can add tighter limits of their own, never loosen an admin's", async () => {
      const { s, id, key } = await userAndKey("owner@example.org");
      const other = await userAndKey("not-owner@example.org");
      const ownPut = (keyId: string, payload: Record<string, unknown>, token = s.token) =>
        app.inject({
          method: "PUT",
          url: `/api/user/api-keys/${keyId}/limits`,
          headers: { ...bearer(token), ...JSON_CT },
          payload,
        });
      const mine = await ownPut(id, { requestsPerMinute: 2 });
      expect(mine.statusCode).toBe(200);
      expect(mine.json()).toMatchObject({
        overrides: { requestsPerMinute: null },
        ownerOverrides: { requestsPerMinute: 2 },
        effective: { requestsPerMinute: 2 },
      });
      const results = await Promise.all(Array.from({ length: 6 }, () => post(key, chat("hi"))));
      expect(results.filter((r) => r.status === 200)).toHaveLength(2);
      const refused = results.find((r) => r.status === 429) as Response;
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
        /^Limit reached \(API key\): 2 requests per minute/,
      );
      // An admin's tighter value wins; the owner's looser one cannot lift it.
      await putKeyLimits(id, { tokensPerDay: 100 });
      const loose = await ownPut(id, { requestsPerMinute: 2, tokensPerDay: 1_000_000 });
      expect(loose.json().effective).toMatchObject({ requestsPerMinute: 2, tokensPerDay: 100 });
      // Only the owner, only with a session, only these fields.
      expect((await ownPut(other.id, { requestsPerMinute: 1 })).statusCode).toBe(404);
      expect((await ownPut(id, { requestsPerMinute: 1 }, key)).statusCode).toBe(403);
      expect((await ownPut(id, { requestsPerMinute: 1, userId: other.s.userId })).statusCode).toBe(
        400,
      );
      const read = await app.inject({
        method: "GET",
        url: `/api/user/api-keys/${id}/limits`,
        headers: bearer(s.token),
      });
      expect(read.json()).toMatchObject({
        apiKeyId: id,
        userId: s.userId,
        usage: { requestsThisMinute: 2 },
      });
      // Revoking the key removes its own limits with it.
      const revoked = await app.inject({
        method: "DELETE",
        url: `/api/user/api-keys/${id}`,
        headers: bearer(s.token),
      });
      expect(revoked.statusCode).toBe(200);
      const left = await app.db.kysely
        .selectFrom("limit_override")
        .select("subject")
        .where("subject", "in", [`key:${id}`, `keyown:${id}`])
        .execute();
      expect(left).toEqual([]);
    });

    it("bin/admin set-key-limits writes the key's limits the gateway enforces", async () => {
      const { id, key } = await userAndKey("cli-key@example.org");
      const config = testConfig(db);
      const lines = await runAdmin(
        ["set-key-limits", "--key-id", id, "--requests-per-minute", "1", "--tokens-per-day", "500"],
        config,
      );
      expect(lines).toEqual([
        `limits of API key ${id} (cli-key@example.org): 1 requests/min, 500 tokens/day, ` +
          "unlimited concurrent, unlimited max tokens/request; cli-key@example.org's own limits apply as well",
      ]);
      expect((await keyLimits(id)).overrides).toMatchObject({
        requestsPerMinute: 1,
        tokensPerDay: 500,
      });
      expect((await post(key, chat("hi"))).status).toBe(200);
      expect((await post(key, chat("hi"))).status).toBe(429);
      await runAdmin(
        ["set-key-limits", "--key-id", id, "--requests-per-minute", "default"],
        config,
      );
      expect((await keyLimits(id)).overrides).toMatchObject({
        requestsPerMinute: null,
        tokensPerDay: 500,
      });
      await expect(
        runAdmin(["set-key-limits", "--key-id", "nope", "--max-tokens", "5"], config),
      ).rejects.toThrow(/no API key with id nope/);
      await expect(runAdmin(["set-key-limits", "--key-id", id], config)).rejects.toThrow(
        /at least one limit/,
      );
      await expect(
        runAdmin(["set-key-limits", "--requests-per-minute", "3"], config),
      ).rejects.toThrow(/missing --key-id/);
    });
  });

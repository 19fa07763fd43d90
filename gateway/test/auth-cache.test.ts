import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { buildApp } from "../src/app.js";
import { TtlCache } from "../src/auth/ttl-cache.js";
import { runAdmin } from "../src/cli.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  browser,
  createApiKey,
  DATABASES,
  databaseConfig,
  JSON_CT,
  ORIGIN,
  postgresMissing,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";

const noPostgres = await postgresMissing();

describe("TtlCache", () => {
  it("keeps an entry for its TTL, never past its own `until`", () => {
    let now = 1000;
    const cache = new TtlCache<string>(500, 10, () => now);
    cache.set("a", "A", cache.generation);
    cache.set("b", "B", cache.generation, 1200);
    expect(cache.get("a")).toBe("A");
    expect(cache.get("b")).toBe("B");
    now = 1200;
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("A");
    now = 1500;
    expect(cache.get("a")).toBeUndefined();
    cache.set("c", "C", cache.generation, 1500);
    expect(cache.get("c")).toBeUndefined();
  });

  it("drops what a lookup started before clear() would store", () => {
    const cache = new TtlCache<string>(1000);
    const before = cache.generation;
    cache.clear();
    cache.set("k", "stale", before);
    expect(cache.get("k")).toBeUndefined();
    cache.set("k", "fresh", cache.generation);
    expect(cache.get("k")).toBe("fresh");
  });

  it("is bounded (oldest first) and off with TTL 0", () => {
    const cache = new TtlCache<number>(1000, 2);
    for (const [i, k] of ["a", "b", "c"].entries()) cache.set(k, i, cache.generation);
    expect(cache.size).toBe(2);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("c")).toBe(2);
    const off = new TtlCache<number>(0);
    off.set("a", 1, off.generation);
    expect(off.get("a")).toBeUndefined();
  });
});

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `verified API keys are reused, and every change applies at once (${database})`,
    () => {
      let fake: FakeLlm;
      let app: FastifyInstance;
      let admin: Session;
      let user: Session;
      let key: string;
      let keyId: string;
      let dbConfig: Awaited<ReturnType<typeof databaseConfig>>;

      beforeAll(async () => {
        fake = await startFakeLlm();
      });
      afterAll(async () => {
        await fake.close();
      });
      beforeEach(async () => {
        // A file, not :memory:, so bin/admin (another connection) sees the same database.
        dbConfig = await databaseConfig(
          database,
          join(mkdtempSync(join(tmpdir(), "gateway-auth-cache-")), "g.sqlite"),
        );
        app = await buildApp(
          testConfig({ llmServerUrls: [fake.url], ...dbConfig, authCacheTtlMs: 60_000 }),
        );
        admin = await signUpAdmin(app, "admin@example.org");
        user = await signUp(app, "user@example.org");
        ({ id: keyId, key } = await createApiKey(app, user));
      }, PG_SETUP_TIMEOUT);
      afterEach(async () => {
        await app.close();
      });

      const me = async (k = key) =>
        (await app.inject({ method: "GET", url: "/api/user", headers: bearer(k) })).statusCode;
      const adminList = async () =>
        (await app.inject({ method: "GET", url: "/api/admin/users", headers: bearer(key) }))
          .statusCode;
      const patchUser = (payload: Record<string, unknown>) =>
        app.inject({
          method: "PATCH",
          url: `/api/admin/users/${user.userId}`,
          headers: { ...bearer(admin.token), ...JSON_CT },
          payload,
        });

      it("verifies a key once, then answers from memory", async () => {
        const verify = vi.spyOn(app.auth.api, "verifyApiKey");
        for (let i = 0; i < 5; i++) expect(await me()).toBe(200);
        expect(verify).toHaveBeenCalledTimes(1);
        expect(await me(`${key}x`)).toBe(401);
      });

      it("revoking a key: the next request is refused", async () => {
        expect(await me()).toBe(200);
        const del = await app.inject({
          method: "DELETE",
          url: `/api/user/api-keys/${keyId}`,
          headers: browser(user),
        });
        expect(del.statusCode).toBe(200);
        expect(await me()).toBe(401);
      });

      it("deleting a key through better-auth's own endpoint: the next request is refused", async () => {
        expect(await me()).toBe(200);
        const del = await app.inject({
          method: "POST",
          url: "/api/auth/api-key/delete",
          headers: { ...browser(user), origin: ORIGIN, ...JSON_CT },
          payload: { keyId },
        });
        expect(del.statusCode).toBe(200);
        expect(await me()).toBe(401);
      });

      it("disabling the user: the next request is refused; enabling restores", async () => {
        expect(await me()).toBe(200);
        expect((await patchUser({ disabled: true })).statusCode).toBe(200);
        expect(await me()).toBe(401);
        expect((await patchUser({ disabled: false })).statusCode).toBe(200);
        expect(await me()).toBe(200);
      });

      it("a role change applies to the next request", async () => {
        expect(await adminList()).toBe(403);
        expect((await patchUser({ role: "admin" })).statusCode).toBe(200);
        expect(await adminList()).toBe(200);
        expect((await patchUser({ role: "user" })).statusCode).toBe(200);
        expect(await adminList()).toBe(403);
      });

      it("deleting the account: its key is refused at once", async () => {
        expect(await me()).toBe(200);
        const res = await app.inject({
          method: "DELETE",
          url: "/api/user",
          headers: { ...browser(user), ...JSON_CT },
          payload: { password: "correct-horse-battery" },
        });
        expect(res.statusCode).toBe(200);
        expect(await me()).toBe(401);
      });

      it("a limit an admin sets applies to the next request", async () => {
        const post = () =>
          app.inject({
            method: "POST",
            url: "/v1/chat/completions",
            headers: { ...bearer(key), ...JSON_CT },
            payload: { model: "fake-model", messages: [{ role: "user", content: "hi" }] },
          });
        expect((await post()).statusCode).toBe(200);
        const set = await app.inject({
          method: "PATCH",
          url: `/api/admin/users/${user.userId}/limits`,
          headers: { ...bearer(admin.token), ...JSON_CT },
          payload: { maxTokens: 1 },
        });
        expect(set.statusCode).toBe(200);
        const capped = await app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: { ...bearer(key), ...JSON_CT },
          payload: {
            model: "fake-model",
            messages: [{ role: "user", content: "hi" }],
            max_tokens: 5,
          },
        });
        expect(capped.statusCode).toBe(400);
      });
    },
  );

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `changes from the admin CLI (another process) apply within AUTH_CACHE_TTL_MS (${database})`,
    () => {
      it("disable through bin/admin: refused once the TTL has passed", async () => {
        const db = await databaseConfig(
          database,
          join(mkdtempSync(join(tmpdir(), "gateway-auth-cache-cli-")), "g.sqlite"),
        );
        const config = testConfig({ ...db, authCacheTtlMs: 300 });
        const app = await buildApp(config);
        try {
          await signUp(app, "admin@example.org");
          await signUp(app, "cli@example.org");
          const lines = await runAdmin(["create-api-key", "--email", "cli@example.org"], config);
          const key = lines.at(-1) ?? "";
          const me = async () =>
            (await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) }))
              .statusCode;
          expect(await me()).toBe(200);
          await runAdmin(["disable", "--email", "cli@example.org"], config);
          await new Promise((r) => setTimeout(r, 350));
          expect(await me()).toBe(401);
        } finally {
          await app.close();
        }
      });
    },
  );

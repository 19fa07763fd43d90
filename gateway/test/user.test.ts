import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  browser,
  buildTestApp,
  DATABASES,
  JSON_CT,
  postgresMissing,
  type Session,
  signIn,
  signUp,
  signUpAdmin,
} from "./helpers.js";

const noPostgres = await postgresMissing();

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`/api/user (${database})`, () => {
    let app: FastifyInstance;
    let s: Session;

    beforeEach(async () => {
      app = await buildTestApp({ database });
      s = await signUp(app, "me@example.org");
    });
    afterEach(async () => {
      await app.close();
    });

    it("updates the name and rejects unknown fields such as role", async () => {
      const ok = await app.inject({
        method: "PATCH",
        url: "/api/user",
        headers: { ...browser(s), ...JSON_CT },
        payload: { name: "New Name" },
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().name).toBe("New Name");

      const other = await signUp(app, "other@example.org");
      const mass = await app.inject({
        method: "PATCH",
        url: "/api/user",
        headers: { ...browser(other), ...JSON_CT },
        payload: { name: "x", role: "admin" },
      });
      expect(mass.statusCode).toBe(400);
      expect(mass.json().error).toMatchObject({
        code: "VALIDATION_ERROR",
        type: "invalid_request_error",
      });
      // The same with only privileged fields, by bearer token too: 4xx, nothing changes.
      for (const payload of [{ role: "admin" }, { banned: false, emailVerified: true }]) {
        const res = await app.inject({
          method: "PATCH",
          url: "/api/user",
          headers: { ...bearer(other.token), ...JSON_CT },
          payload,
        });
        expect(res.statusCode).toBe(400);
      }
      const me = await app.inject({ method: "GET", url: "/api/user", headers: browser(other) });
      expect(me.json()).toMatchObject({ role: "user", name: "Test User" });
    });

    it("rejects wrong types and malformed JSON with 400", async () => {
      const wrongType = await app.inject({
        method: "PATCH",
        url: "/api/user",
        headers: { ...browser(s), ...JSON_CT },
        payload: { name: 42 },
      });
      expect(wrongType.statusCode).toBe(400);
      const malformed = await app.inject({
        method: "PATCH",
        url: "/api/user",
        headers: { ...browser(s), ...JSON_CT },
        payload: "{nope",
      });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().error).toHaveProperty("code");
    });

    it("changes the password, revoking other sessions but keeping this one", async () => {
      const other = await signIn(app, "me@example.org");
      expect(other.session).not.toBeNull();
      const wrong = await app.inject({
        method: "POST",
        url: "/api/user/password",
        headers: { ...browser(s), ...JSON_CT },
        payload: { currentPassword: "not-it-at-all", newPassword: "a-new-password-1" },
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().error.code).toBe("INVALID_PASSWORD");

      const res = await app.inject({
        method: "POST",
        url: "/api/user/password",
        headers: { ...browser(s), ...JSON_CT },
        payload: { currentPassword: "correct-horse-battery", newPassword: "a-new-password-1" },
      });
      expect(res.statusCode).toBe(200);
      const still = await app.inject({ method: "GET", url: "/api/user", headers: browser(s) });
      expect(still.statusCode).toBe(200);
      const gone = await app.inject({
        method: "GET",
        url: "/api/user",
        headers: bearer(other.session?.token ?? ""),
      });
      expect(gone.statusCode).toBe(401);
      expect((await signIn(app, "me@example.org")).status).toBe(401);
      expect((await signIn(app, "me@example.org", "a-new-password-1")).status).toBe(200);
    });

    it("creates, lists, uses and revokes API keys; the key is shown once", async () => {
      const created = await app.inject({
        method: "POST",
        url: "/api/user/api-keys",
        headers: { ...browser(s), ...JSON_CT },
        payload: { name: "laptop", expiresInDays: 30 },
      });
      expect(created.statusCode).toBe(201);
      const { id, key, expiresAt, name } = created.json();
      expect(name).toBe("laptop");
      expect(key).toMatch(/^llm_/);
      const days = (new Date(expiresAt).getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(29);
      expect(days).toBeLessThan(31);

      const me = await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) });
      expect(me.statusCode).toBe(200);
      expect(me.json().email).toBe("me@example.org");

      const list = await app.inject({
        method: "GET",
        url: "/api/user/api-keys",
        headers: browser(s),
      });
      expect(list.statusCode).toBe(200);
      const keys = list.json().keys;
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ id, name: "laptop" });
      expect(key.startsWith(keys[0].start)).toBe(true);
      expect(list.body).not.toContain(key);
      expect(keys[0].lastUsedAt).not.toBeNull();

      // An API key cannot manage keys or the account.
      const byKey = await app.inject({
        method: "GET",
        url: "/api/user/api-keys",
        headers: bearer(key),
      });
      expect(byKey.statusCode).toBe(403);

      const other = await signUp(app, "other@example.org");
      const foreign = await app.inject({
        method: "DELETE",
        url: `/api/user/api-keys/${id}`,
        headers: browser(other),
      });
      expect(foreign.statusCode).toBe(404);

      const del = await app.inject({
        method: "DELETE",
        url: `/api/user/api-keys/${id}`,
        headers: browser(s),
      });
      expect(del.statusCode).toBe(200);
      const after = await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) });
      expect(after.statusCode).toBe(401);
    });

    it("deletes the account only with the right password, with its keys", async () => {
      const created = await app.inject({
        method: "POST",
        url: "/api/user/api-keys",
        headers: { ...browser(s), ...JSON_CT },
        payload: { name: "k" },
      });
      const key = created.json().key as string;
      const wrong = await app.inject({
        method: "DELETE",
        url: "/api/user",
        headers: { ...browser(s), ...JSON_CT },
        payload: { password: "wrong-password" },
      });
      expect(wrong.statusCode).toBe(400);
      const res = await app.inject({
        method: "DELETE",
        url: "/api/user",
        headers: { ...browser(s), ...JSON_CT },
        payload: { password: "correct-horse-battery" },
      });
      expect(res.statusCode).toBe(200);
      expect(
        (await app.inject({ method: "GET", url: "/api/user", headers: browser(s) })).statusCode,
      ).toBe(401);
      expect(
        (await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) })).statusCode,
      ).toBe(401);
      const count = await app.db.kysely
        .selectFrom("apikey")
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(0);
      expect((await signIn(app, "me@example.org")).status).toBe(401);
    });
  });

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`/api/admin/users (${database})`, () => {
    let app: FastifyInstance;
    let adminS: Session;
    let userS: Session;

    beforeEach(async () => {
      app = await buildTestApp({ database });
      adminS = await signUpAdmin(app, "admin@example.org", undefined, "Ada Admin");
      userS = await signUp(app, "user@example.org", undefined, "Bob User");
    });
    afterEach(async () => {
      await app.close();
    });

    it("is for admins only", async () => {
      const res = await app.inject({
        method: "GET",
        url: "/api/admin/users",
        headers: browser(userS),
      });
      expect(res.statusCode).toBe(403);
    });

    it("lists and searches users", async () => {
      const all = await app.inject({
        method: "GET",
        url: "/api/admin/users",
        headers: browser(adminS),
      });
      expect(all.statusCode).toBe(200);
      expect(
        all
          .json()
          .users.map((u: { email: string }) => u.email)
          .sort(),
      ).toEqual(["admin@example.org", "user@example.org"]);
      const found = await app.inject({
        method: "GET",
        url: "/api/admin/users?q=bob",
        headers: browser(adminS),
      });
      expect(found.json().users).toHaveLength(1);
      expect(found.json().users[0]).toMatchObject({
        email: "user@example.org",
        role: "user",
        disabled: false,
      });
    });

    it("changes a role, which signs that user out", async () => {
      const res = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${userS.userId}`,
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { role: "admin" },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json().role).toBe("admin");
      const old = await app.inject({ method: "GET", url: "/api/user", headers: browser(userS) });
      expect(old.statusCode).toBe(401);
      const fresh = await signIn(app, "user@example.org");
      const me = await app.inject({
        method: "GET",
        url: "/api/admin/users",
        headers: bearer(fresh.session?.token ?? ""),
      });
      expect(me.statusCode).toBe(200);
    });

    it("disables an account: sessions, API keys and sign-in stop working; enabling restores", async () => {
      const created = await app.inject({
        method: "POST",
        url: "/api/user/api-keys",
        headers: { ...browser(userS), ...JSON_CT },
        payload: { name: "k" },
      });
      const key = created.json().key as string;
      const res = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${userS.userId}`,
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { disabled: true },
      });
      expect(res.json().disabled).toBe(true);
      expect(
        (await app.inject({ method: "GET", url: "/api/user", headers: browser(userS) })).statusCode,
      ).toBe(401);
      expect(
        (await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) })).statusCode,
      ).toBe(401);
      expect((await signIn(app, "user@example.org")).status).not.toBe(200);

      await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${userS.userId}`,
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { disabled: false },
      });
      expect(
        (await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) })).statusCode,
      ).toBe(200);
      expect((await signIn(app, "user@example.org")).status).toBe(200);
    });

    it("rejects unknown fields, unknown users and self-demotion", async () => {
      const extra = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${userS.userId}`,
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { email: "x@example.org" },
      });
      expect(extra.statusCode).toBe(400);
      const missing = await app.inject({
        method: "PATCH",
        url: "/api/admin/users/nope",
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { role: "admin" },
      });
      expect(missing.statusCode).toBe(404);
      const self = await app.inject({
        method: "PATCH",
        url: `/api/admin/users/${adminS.userId}`,
        headers: { ...browser(adminS), ...JSON_CT },
        payload: { role: "user" },
      });
      expect(self.statusCode).toBe(403);
    });

    it("requires 2FA for admins when REQUIRE_ADMIN_2FA is set", async () => {
      const strict = await buildTestApp({ database, requireAdmin2fa: true });
      try {
        const a = await signUpAdmin(strict, "a@example.org");
        const res = await strict.inject({
          method: "GET",
          url: "/api/admin/users",
          headers: browser(a),
        });
        expect(res.statusCode).toBe(403);
        expect(res.json().error.code).toBe("TWO_FACTOR_REQUIRED");
      } finally {
        await strict.close();
      }
    });
  });

import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  browser,
  buildTestApp,
  cookiesOf,
  DATABASES,
  ORIGIN,
  postgresMissing,
  signIn,
  signUp,
} from "./helpers.js";

const noPostgres = await postgresMissing();

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `accounts and authentication (${database})`,
    () => {
      let app: FastifyInstance;

      beforeEach(async () => {
        app = await buildTestApp({ database });
      });
      afterEach(async () => {
        await app.close();
      });

      it("never makes an admin by open sign-up, the first account included", async () => {
        const first = await signUp(app, "first@example.org");
        const second = await signUp(app, "second@example.org");
        const me1 = await app.inject({ method: "GET", url: "/api/user", headers: browser(first) });
        const me2 = await app.inject({ method: "GET", url: "/api/user", headers: browser(second) });
        expect(me1.statusCode).toBe(200);
        expect(me1.json()).toMatchObject({ email: "first@example.org", role: "user" });
        expect(me2.json()).toMatchObject({
          email: "second@example.org",
          role: "user",
          twoFactorEnabled: false,
          name: "Test User",
        });
        expect(new Date(me2.json().createdAt).getTime()).toBeGreaterThan(0);
      });

      it("sets an HttpOnly SameSite=Lax session cookie", async () => {
        const res = await app.inject({
          method: "POST",
          url: "/api/auth/sign-up/email",
          headers: { origin: ORIGIN, "content-type": "application/json" },
          payload: { email: "c@example.org", password: "correct-horse-battery", name: "C" },
        });
        const raw = res.headers["set-cookie"];
        const cookies = (Array.isArray(raw) ? raw : [raw]).join("\n");
        expect(cookies).toMatch(/session_token=.*HttpOnly/i);
        expect(cookies).toMatch(/SameSite=Lax/i);
        expect(cookies).not.toMatch(/Secure/i);
        expect(res.headers["cache-control"]).toBe("no-store");
      });

      it("marks cookies Secure when the public URL is https", async () => {
        const tls = await buildTestApp({
          database,
          publicUrl: "https://chat.example.org",
          trustedOrigins: ["https://chat.example.org"],
        });
        try {
          const res = await tls.inject({
            method: "POST",
            url: "/api/auth/sign-up/email",
            headers: { origin: "https://chat.example.org", "content-type": "application/json" },
            payload: { email: "s@example.org", password: "correct-horse-battery", name: "S" },
          });
          expect(res.statusCode).toBe(200);
          expect(cookiesOf(res.headers)).toContain("__Secure-");
          expect(String(res.headers["set-cookie"])).toMatch(/Secure/);
        } finally {
          await tls.close();
        }
      });

      it("refuses /api/user without credentials, with a bad token, and after sign-out", async () => {
        const none = await app.inject({ method: "GET", url: "/api/user" });
        expect(none.statusCode).toBe(401);
        expect(none.json()).toEqual({
          error: { code: "UNAUTHORIZED", type: "authentication_error", message: "Sign in first" },
        });
        const bad = await app.inject({ method: "GET", url: "/api/user", headers: bearer("nope") });
        expect(bad.statusCode).toBe(401);

        const s = await signUp(app, "out@example.org");
        const byToken = await app.inject({
          method: "GET",
          url: "/api/user",
          headers: bearer(s.token),
        });
        expect(byToken.statusCode).toBe(200);
        const out = await app.inject({
          method: "POST",
          url: "/api/auth/sign-out",
          headers: { ...browser(s), "content-type": "application/json" },
          payload: {},
        });
        expect(out.statusCode).toBe(200);
        const after = await app.inject({ method: "GET", url: "/api/user", headers: browser(s) });
        expect(after.statusCode).toBe(401);
        const afterToken = await app.inject({
          method: "GET",
          url: "/api/user",
          headers: bearer(s.token),
        });
        expect(afterToken.statusCode).toBe(401);
      });

      it("gives the same answer for an unknown email and a wrong password", async () => {
        await signUp(app, "known@example.org");
        const unknown = await signIn(app, "unknown@example.org");
        const wrong = await signIn(app, "known@example.org", "wrong-password-123");
        expect(unknown.status).toBe(401);
        expect(wrong.status).toBe(401);
        expect(unknown.body).toEqual(wrong.body);
      });

      it("issues short-lived JWTs that work as bearer tokens until the session ends", async () => {
        const s = await signUp(app, "jwt@example.org");
        const tokenRes = await app.inject({
          method: "GET",
          url: "/api/auth/token",
          headers: browser(s),
        });
        expect(tokenRes.statusCode).toBe(200);
        const jwt = tokenRes.json().token as string;
        expect(jwt.split(".")).toHaveLength(3);
        const jwks = await app.inject({ method: "GET", url: "/api/auth/jwks" });
        expect(jwks.json().keys.length).toBeGreaterThan(0);

        const me = await app.inject({ method: "GET", url: "/api/user", headers: bearer(jwt) });
        expect(me.statusCode).toBe(200);
        expect(me.json().email).toBe("jwt@example.org");

        const tampered = `${jwt.slice(0, -4)}AAAA`;
        const bad = await app.inject({
          method: "GET",
          url: "/api/user",
          headers: bearer(tampered),
        });
        expect(bad.statusCode).toBe(401);

        await app.inject({
          method: "POST",
          url: "/api/auth/sign-out",
          headers: { ...browser(s), "content-type": "application/json" },
          payload: {},
        });
        const revoked = await app.inject({ method: "GET", url: "/api/user", headers: bearer(jwt) });
        expect(revoked.statusCode).toBe(401);
      });

      it("refuses a cookie-authenticated change from a foreign origin", async () => {
        const s = await signUp(app, "csrf@example.org");
        const res = await app.inject({
          method: "PATCH",
          url: "/api/user",
          headers: {
            cookie: s.cookie,
            origin: "https://evil.example",
            "content-type": "application/json",
          },
          payload: { name: "pwned" },
        });
        expect(res.statusCode).toBe(403);
        expect(res.json().error.code).toBe("CSRF_REJECTED");
        const me = await app.inject({ method: "GET", url: "/api/user", headers: browser(s) });
        expect(me.json().name).toBe("Test User");
      });

      it("lists the configured OAuth providers (none by default)", async () => {
        const res = await app.inject({ method: "GET", url: "/api/auth-providers" });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ providers: [] });
      });
    },
  );

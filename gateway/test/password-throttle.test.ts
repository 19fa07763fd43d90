import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, buildTestApp, JSON_CT, ORIGIN, type Session, signIn, signUp } from "./helpers.js";

const PASSWORD = "correct-horse-battery";

/** The routes that check the caller's current password, each with a wrong and a right body. */
const CHECKS = [
  {
    name: "POST /api/user/password",
    method: "POST" as const,
    url: "/api/user/password",
    body: (pw: string) => ({ currentPassword: pw, newPassword: "another-password-1" }),
  },
  {
    name: "DELETE /api/user",
    method: "DELETE" as const,
    url: "/api/user",
    body: (pw: string) => ({ password: pw }),
  },
  {
    name: "better-auth's POST /api/auth/change-password",
    method: "POST" as const,
    url: "/api/auth/change-password",
    body: (pw: string) => ({ currentPassword: pw, newPassword: "another-password-1" }),
  },
  {
    name: "better-auth's POST /api/auth/verify-password",
    method: "POST" as const,
    url: "/api/auth/verify-password",
    body: (pw: string) => ({ password: pw }),
  },
];

describe("password checks of a signed-in account are throttled like sign-in", {
  timeout: 60_000,
}, () => {
  let app: FastifyInstance;
  let s: Session;
  beforeEach(async () => {
    app = await buildTestApp();
    s = await signUp(app, "me@example.org", PASSWORD);
  }, 60_000);
  afterEach(async () => {
    await app.close();
  });

  for (const check of CHECKS) {
    it(`${check.name}: 429 with Retry-After after 5 wrong passwords, even for the right one`, async () => {
      const send = (pw: string, ip = "10.7.0.1") =>
        app.inject({
          method: check.method,
          url: check.url,
          headers: { ...bearer(s.token), ...JSON_CT, origin: ORIGIN, "x-forwarded-for": ip },
          payload: check.body(pw),
        });
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await send(`wrong-${i}-password`)).statusCode);
      expect(statuses).toEqual([400, 400, 400, 400, 400]);
      const held = await send(PASSWORD);
      expect(held.statusCode).toBe(429);
      expect(Number(held.headers["retry-after"])).toBeGreaterThan(0);
      expect(JSON.stringify(held.json())).toContain("TOO_MANY_ATTEMPTS");
      // The account is still there with its password: nothing was changed or deleted.
      expect((await signIn(app, "me@example.org", PASSWORD)).status).toBe(200);
      // Another client IP (the owner elsewhere) is not held back.
      expect((await send(PASSWORD, "10.7.0.2")).statusCode).toBe(200);
    });
  }
});

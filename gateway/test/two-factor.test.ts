import { createHmac } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  browser,
  buildTestApp,
  cookiesOf,
  DATABASES,
  JSON_CT,
  ORIGIN,
  postgresMissing,
  resetTokens,
  signIn,
  signUp,
  signUpAdmin,
} from "./helpers.js";

const noPostgres = await postgresMissing();

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) — test-side only, to play the authenticator app. */
function totp(base32Secret: string, at = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of base32Secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g)?.map((b) => Number.parseInt(b, 2)) ?? []);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac.at(-1) ?? 0) & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return code.toString().padStart(6, "0");
}

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `two-factor authentication (TOTP) (${database})`,
    () => {
      let app: FastifyInstance;
      beforeEach(async () => {
        app = await buildTestApp({ database, requireAdmin2fa: true });
      });
      afterEach(async () => {
        await app.close();
      });

      it("enables TOTP, then sign-in needs a code; admins need it for admin routes", async () => {
        const s = await signUpAdmin(app, "admin2fa@example.org");
        const blocked = await app.inject({
          method: "GET",
          url: "/api/admin/users",
          headers: browser(s),
        });
        expect(blocked.statusCode).toBe(403);

        const enable = await app.inject({
          method: "POST",
          url: "/api/auth/two-factor/enable",
          headers: { ...browser(s), ...JSON_CT },
          payload: { password: "correct-horse-battery" },
        });
        expect(enable.statusCode).toBe(200);
        const { totpURI, backupCodes } = enable.json();
        expect(backupCodes.length).toBeGreaterThan(0);
        const secret = new URL(totpURI).searchParams.get("secret") ?? "";
        const cookie = [s.cookie, cookiesOf(enable.headers)].filter(Boolean).join("; ");
        const verify = await app.inject({
          method: "POST",
          url: "/api/auth/two-factor/verify-totp",
          headers: { cookie, origin: ORIGIN, ...JSON_CT },
          payload: { code: totp(secret) },
        });
        expect(verify.statusCode).toBe(200);
        const session = { ...s, cookie: cookiesOf(verify.headers) || s.cookie };
        const me = await app.inject({ method: "GET", url: "/api/user", headers: browser(session) });
        expect(me.json().twoFactorEnabled).toBe(true);
        const admin = await app.inject({
          method: "GET",
          url: "/api/admin/users",
          headers: browser(session),
        });
        expect(admin.statusCode).toBe(200);

        // A password alone no longer gives a session.
        const first = await signIn(app, "admin2fa@example.org");
        expect(first.status).toBe(200);
        expect(first.body).toMatchObject({ twoFactorRedirect: true });
        expect(first.session?.cookie ?? "").not.toMatch(/session_token=[^;]/);

        const pending = await app.inject({
          method: "POST",
          url: "/api/auth/sign-in/email",
          headers: { origin: ORIGIN, ...JSON_CT },
          payload: { email: "admin2fa@example.org", password: "correct-horse-battery" },
        });
        const twoFactorCookie = cookiesOf(pending.headers);
        const wrong = await app.inject({
          method: "POST",
          url: "/api/auth/two-factor/verify-totp",
          headers: { cookie: twoFactorCookie, origin: ORIGIN, ...JSON_CT },
          payload: { code: totp(secret, Date.now() - 10 * 60_000) },
        });
        expect(wrong.statusCode).toBe(401);
        const right = await app.inject({
          method: "POST",
          url: "/api/auth/two-factor/verify-totp",
          headers: { cookie: twoFactorCookie, origin: ORIGIN, ...JSON_CT },
          payload: { code: totp(secret) },
        });
        expect(right.statusCode).toBe(200);
        const fresh = { cookie: cookiesOf(right.headers), token: "", userId: s.userId };
        const ok = await app.inject({ method: "GET", url: "/api/user", headers: browser(fresh) });
        expect(ok.statusCode).toBe(200);
      });
    },
  );

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `brute-force protection and password reset (${database})`,
    () => {
      it("locks an account after repeated failures, for known and unknown emails alike", async () => {
        const app = await buildTestApp({ database });
        try {
          await signUp(app, "victim@example.org");
          const codes: number[] = [];
          const ghost: number[] = [];
          for (let i = 0; i < 6; i++) {
            codes.push((await signIn(app, "victim@example.org", `wrong-${i}-password`)).status);
            ghost.push((await signIn(app, "ghost@example.org", `wrong-${i}-password`)).status);
          }
          expect(codes).toEqual([401, 401, 401, 401, 401, 429]);
          expect(ghost).toEqual(codes);
          // Even the right password is refused while locked.
          const locked = await signIn(app, "victim@example.org");
          expect(locked.status).toBe(429);
          expect(locked.body).toMatchObject({ code: "TOO_MANY_ATTEMPTS" });
        } finally {
          await app.close();
        }
      });

      it("keeps the reset token out of the log; the stored token sets a new password", async () => {
        const lines: string[] = [];
        const app = await buildTestApp(
          { database, logLevel: "debug" },
          {
            logStream: { write: (line) => lines.push(line) },
          },
        );
        try {
          await signUp(app, "forgot@example.org");
          const req = await app.inject({
            method: "POST",
            url: "/api/auth/request-password-reset",
            headers: { origin: ORIGIN, ...JSON_CT },
            payload: { email: "forgot@example.org", redirectTo: `${ORIGIN}/reset-password` },
          });
          expect(req.statusCode).toBe(200);
          expect(lines.join("\n")).toContain("password reset requested");
          const [token = ""] = await resetTokens(app);
          expect(token).not.toBe("");
          // The link's GET (what the user clicks) is logged with its token redacted.
          const callbackURL = encodeURIComponent(`${ORIGIN}/reset-password`);
          const click = await app.inject({
            method: "GET",
            url: `/api/auth/reset-password/${token}?callbackURL=${callbackURL}`,
          });
          expect(click.statusCode).toBe(302);
          expect(lines.join("\n")).toContain("reset-password/[redacted]");
          expect(lines.join("\n")).not.toContain(token);
          const reset = await app.inject({
            method: "POST",
            url: "/api/auth/reset-password",
            headers: { origin: ORIGIN, ...JSON_CT },
            payload: { token, newPassword: "brand-new-password" },
          });
          expect(reset.statusCode).toBe(200);
          expect((await signIn(app, "forgot@example.org")).status).toBe(401);
          expect((await signIn(app, "forgot@example.org", "brand-new-password")).status).toBe(200);
          expect(lines.join("\n")).not.toContain("brand-new-password");
        } finally {
          await app.close();
        }
      });
    },
  );

/**
 * Sign-up policy (SIGNUP_MODE and the admin's runtime setting), pending accounts and
 * invitations, from the outside: HTTP through `app.inject`, the admin command line, the
 * database only to check what is stored.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import type { SignupMode } from "../src/config.js";
import {
  bearer,
  browser,
  DATABASES,
  databaseConfig,
  JSON_CT,
  ORIGIN,
  postgresMissing,
  type Session,
  signIn,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";

const noPostgres = await postgresMissing();
const PASSWORD = "correct-horse-battery";

interface Invited {
  status: number;
  body: { invitation?: { id: string; status: string }; link?: string; mail?: { sent: boolean } };
  token: string;
}

async function invite(
  app: FastifyInstance,
  who: Session,
  email: string,
  role?: string,
): Promise<Invited> {
  const res = await app.inject({
    method: "POST",
    url: "/api/admin/invitations",
    headers: { ...bearer(who.token), ...JSON_CT },
    payload: { email, ...(role ? { role } : {}) },
  });
  const body = res.json() as Invited["body"];
  const token = body.link ? (new URL(body.link).searchParams.get("token") ?? "") : "";
  return { status: res.statusCode, body, token };
}

async function accept(app: FastifyInstance, payload: Record<string, unknown>) {
  return app.inject({
    method: "POST",
    url: "/api/invitations/accept",
    headers: { ...JSON_CT, origin: ORIGIN },
    payload: { name: "Colleague", password: PASSWORD, ...payload },
  });
}

async function setMode(app: FastifyInstance, admin: Session, signupMode: SignupMode) {
  const res = await app.inject({
    method: "PATCH",
    url: "/api/admin/settings",
    headers: { ...bearer(admin.token), ...JSON_CT },
    payload: { signupMode },
  });
  expect(res.statusCode, res.body).toBe(200);
}

async function rawSignUp(app: FastifyInstance, email: string) {
  return app.inject({
    method: "POST",
    url: "/api/auth/sign-up/email",
    headers: { ...JSON_CT, origin: ORIGIN },
    payload: { email, password: PASSWORD, name: "Someone" },
  });
}

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`sign-up policy (${database})`, () => {
    let app: FastifyInstance;
    afterEach(async () => {
      await app?.close();
    });

    async function start(signupMode: SignupMode = "open", extra = {}) {
      app = await buildApp(
        testConfig({ ...(await databaseConfig(database)), signupMode, ...extra }),
      );
      return signUpAdminBefore(signupMode);
    }

    /** An admin, made while sign-up is open (then the mode under test is set). */
    async function signUpAdminBefore(mode: SignupMode): Promise<Session> {
      await app.auth.settings.setSignupMode("open");
      const admin = await signUpAdmin(app, `admin-${database}@example.com`);
      await setMode(app, admin, mode);
      return admin;
    }

    it("SIGNUP_MODE is the default; the admin's setting wins and is public", async () => {
      app = await buildApp(
        testConfig({ ...(await databaseConfig(database)), signupMode: "closed" }),
      );
      expect((await app.inject({ method: "GET", url: "/api/signup" })).json()).toEqual({
        mode: "closed",
        emailVerification: false,
      });
      expect((await rawSignUp(app, "a@example.com")).statusCode).toBe(403);
      const admin = await (async () => {
        await app.auth.settings.setSignupMode("open");
        return signUpAdmin(app, "boss@example.com");
      })();
      await setMode(app, admin, "invite");
      const settings = await app.inject({
        method: "GET",
        url: "/api/admin/settings",
        headers: bearer(admin.token),
      });
      expect(settings.json()).toMatchObject({
        signupMode: "invite",
        signupModeDefault: "closed",
        mail: { configured: false },
      });
      // Wrong values and non-admins are refused.
      const wrong = await app.inject({
        method: "PATCH",
        url: "/api/admin/settings",
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: { signupMode: "everyone" },
      });
      expect(wrong.statusCode).toBe(400);
      const invited = await invite(app, admin, "user@example.com");
      expect((await accept(app, { token: invited.token })).statusCode).toBe(201);
      const user = await signIn(app, "user@example.com", PASSWORD);
      const asUser = await app.inject({
        method: "PATCH",
        url: "/api/admin/settings",
        headers: { ...bearer(user.session?.token ?? ""), ...JSON_CT },
        payload: { signupMode: "open" },
      });
      expect(asUser.statusCode).toBe(403);
      expect(await app.auth.settings.signupMode()).toBe("invite");
    });

    it("closed: email sign-up refused without revealing taken emails", async () => {
      await start("closed");
      for (const email of ["new@example.com", `admin-${database}@example.com`]) {
        const res = await rawSignUp(app, email);
        expect(res.statusCode).toBe(403);
        expect(res.json()).toMatchObject({ code: "SIGNUP_CLOSED" });
      }
    });

    it("invite: sign-up with no, a forged or another's token is refused", async () => {
      const admin = await start("invite");
      const res = await rawSignUp(app, "walk-in@example.com");
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ code: "INVITATION_REQUIRED" });
      // Forged tokens, and a body that names a token better-auth does not know about.
      for (const token of ["forged", "a".repeat(43), "x".repeat(200)]) {
        const forged = await accept(app, { token });
        expect(forged.statusCode).toBe(403);
        expect(forged.json()).toMatchObject({ error: { code: "INVITATION_INVALID" } });
      }
      const withToken = await app.inject({
        method: "POST",
        url: "/api/auth/sign-up/email",
        headers: { ...JSON_CT, origin: ORIGIN },
        payload: {
          email: "walk-in@example.com",
          password: PASSWORD,
          name: "x",
          token: (await invite(app, admin, "walk-in@example.com")).token,
        },
      });
      expect(withToken.statusCode).toBe(403);
      // Bad shapes: missing token, wrong types, huge values, unknown fields.
      for (const payload of [
        {},
        { token: 5 },
        { token: "t".repeat(201) },
        { token: "t", role: "admin" },
        { token: "t", name: "" },
      ]) {
        const bad = await app.inject({
          method: "POST",
          url: "/api/invitations/accept",
          headers: JSON_CT,
          payload: { name: "x", password: PASSWORD, ...payload },
        });
        expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
        expect(bad.json()).toMatchObject({ error: { code: "VALIDATION_ERROR" } });
      }
    });

    it("an invitation: bound to its email, single use, hashed, listed and revocable", async () => {
      const admin = await start("invite");
      const invited = await invite(app, admin, "Colleague@Example.com");
      expect(invited.status).toBe(201);
      // No SMTP: not mailed, the link comes back to the admin.
      expect(invited.body.mail).toEqual({ sent: false, reason: "not-configured" });
      expect(invited.body.link).toMatch(/^http:\/\/localhost:3000\/invite\?token=[\w-]{43}$/);
      // Only the token's SHA-256 is stored.
      const rows = await app.db.kysely.selectFrom("invitation").selectAll().execute();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(invited.token);
      expect(rows[0]?.tokenHash).toBe(createHash("sha256").update(invited.token).digest("hex"));
      expect(rows[0]?.email).toBe("colleague@example.com");

      const inspect = await app.inject({
        method: "POST",
        url: "/api/invitations/inspect",
        headers: JSON_CT,
        payload: { token: invited.token },
      });
      expect(inspect.json()).toMatchObject({ email: "colleague@example.com", role: "user" });

      // Another email than the invited one.
      const other = await accept(app, { token: invited.token, email: "me@example.com" });
      expect(other.statusCode).toBe(403);
      expect(other.json()).toMatchObject({ error: { code: "INVITATION_EMAIL_MISMATCH" } });
      // A too short password leaves the link usable.
      expect((await accept(app, { token: invited.token, password: "short" })).statusCode).toBe(400);
      // Two at once: exactly one account.
      const both = await Promise.all([
        accept(app, { token: invited.token }),
        accept(app, { token: invited.token, email: "COLLEAGUE@example.com" }),
      ]);
      // The loser finds the link used (403) or, when it checks after the winner's account
      // exists, the email taken (409): either way one account.
      const codes = both.map((r) => r.statusCode).sort();
      expect(codes[0]).toBe(201);
      expect([403, 409]).toContain(codes[1]);
      const accounts = await app.db.kysely
        .selectFrom("user")
        .select("id")
        .where("email", "=", "colleague@example.com")
        .execute();
      expect(accounts).toHaveLength(1);
      const created = both.find((r) => r.statusCode === 201)?.json() as { user: unknown };
      expect(created.user).toMatchObject({ email: "colleague@example.com", role: "user" });
      // Used: a third try fails, and the account signs in with its password, not pending.
      expect((await accept(app, { token: invited.token })).statusCode).toBe(403);
      const session = await signIn(app, "colleague@example.com", PASSWORD);
      expect(session.status).toBe(200);
      const me = await app.inject({
        method: "GET",
        url: "/api/user",
        headers: bearer(session.session?.token ?? ""),
      });
      expect(me.json()).toMatchObject({ role: "user", pending: false });

      // Listed with its status; an existing account cannot be invited.
      const list = await app.inject({
        method: "GET",
        url: "/api/admin/invitations",
        headers: bearer(admin.token),
      });
      expect(list.json()).toMatchObject({
        invitations: [{ email: "colleague@example.com", status: "used" }],
      });
      expect(JSON.stringify(list.json())).not.toContain(invited.token);
      expect((await invite(app, admin, "colleague@example.com")).status).toBe(409);

      // Revoked: unusable; a used one cannot be revoked.
      const second = await invite(app, admin, "second@example.com");
      const revoke = await app.inject({
        method: "DELETE",
        url: `/api/admin/invitations/${second.body.invitation?.id}`,
        headers: bearer(admin.token),
      });
      expect(revoke.json()).toMatchObject({ status: "revoked" });
      expect((await accept(app, { token: second.token })).statusCode).toBe(403);
      const usedId = (list.json() as { invitations: { id: string }[] }).invitations[0]?.id;
      const revokeUsed = await app.inject({
        method: "DELETE",
        url: `/api/admin/invitations/${usedId}`,
        headers: bearer(admin.token),
      });
      expect(revokeUsed.statusCode).toBe(409);
      const unknown = await app.inject({
        method: "DELETE",
        url: "/api/admin/invitations/nope",
        headers: bearer(admin.token),
      });
      expect(unknown.statusCode).toBe(404);
    });

    it("an invitation expires", async () => {
      const admin = await start("invite", { invitationTtlMs: 1 });
      const invited = await invite(app, admin, "late@example.com");
      await new Promise((r) => setTimeout(r, 10));
      const late = await accept(app, { token: invited.token });
      expect(late.statusCode).toBe(403);
      expect(late.json()).toMatchObject({ error: { code: "INVITATION_INVALID" } });
      const list = await app.inject({
        method: "GET",
        url: "/api/admin/invitations",
        headers: bearer(admin.token),
      });
      expect(list.json()).toMatchObject({ invitations: [{ status: "expired" }] });
    });

    it("only admins invite, and an admin invitation makes an admin", async () => {
      const admin = await start("open");
      const user = await signUp(app, "plain@example.com");
      for (const role of [undefined, "admin", "user"]) {
        const refused = await invite(app, user, `x-${role}@example.com`, role);
        expect(refused.status).toBe(403);
      }
      const anonymous = await app.inject({
        method: "POST",
        url: "/api/admin/invitations",
        headers: JSON_CT,
        payload: { email: "y@example.com", role: "admin" },
      });
      expect(anonymous.statusCode).toBe(401);
      expect(await app.db.kysely.selectFrom("invitation").selectAll().execute()).toHaveLength(0);
      expect((await invite(app, admin, "z@example.com", "owner")).status).toBe(400);

      const asAdmin = await invite(app, admin, "second-admin@example.com", "admin");
      const res = await accept(app, { token: asAdmin.token });
      expect(res.json()).toMatchObject({ user: { role: "admin" } });
    });

    it("approval: a pending account signs in and can use nothing until approved", async () => {
      const admin = await start("approval");
      const res = await rawSignUp(app, "waiting@example.com");
      expect(res.statusCode).toBe(200);
      const session = await signIn(app, "waiting@example.com", PASSWORD);
      expect(session.status).toBe(200);
      const s = session.session as Session;
      const me = await app.inject({ method: "GET", url: "/api/user", headers: browser(s) });
      expect(me.json()).toMatchObject({ pending: true, role: "user" });
      // Everything else: 403 ACCOUNT_PENDING, by cookie and by bearer token.
      for (const [method, url] of [
        ["GET", "/api/conversations"],
        ["POST", "/api/conversations"],
        ["GET", "/api/user/api-keys"],
        ["POST", "/api/user/api-keys"],
        ["GET", "/api/models"],
        ["POST", "/api/llm/chat"],
        ["POST", "/api/llm/generate"],
        ["GET", "/api/llm/models"],
        ["POST", "/api/analyze"],
        ["GET", "/v1/models"],
        ["POST", "/v1/chat/completions"],
        ["GET", "/api/admin/users"],
      ] as const) {
        for (const headers of [browser(s), bearer(s.token)]) {
          const r = await app.inject({
            method,
            url,
            headers: { ...headers, ...JSON_CT },
            ...(method === "POST" ? { payload: { name: "x" } } : {}),
          });
          expect(r.statusCode, `${method} ${url}`).toBe(403);
          expect(r.body, `${method} ${url}`).toMatch(/ACCOUNT_PENDING|account_pending/);
          expect(r.body).toContain("waiting for an admin's approval");
        }
      }
      // Nor through better-auth's own API-key endpoint.
      const key = await app.inject({
        method: "POST",
        url: "/api/auth/api-key/create",
        headers: { ...browser(s), ...JSON_CT },
        payload: { name: "sneaky" },
      });
      expect(key.statusCode).toBe(403);
      expect(key.json()).toMatchObject({ code: "ACCOUNT_PENDING" });
      expect(await app.db.kysely.selectFrom("apikey").selectAll().execute()).toHaveLength(0);
      // The user cannot clear the flag.
      await app.inject({
        method: "POST",
        url: "/api/auth/update-user",
        headers: { ...browser(s), ...JSON_CT },
        payload: { pending: false },
      });
      const still = await app.inject({ method: "GET", url: "/api/user", headers: browser(s) });
      expect(still.json()).toMatchObject({ pending: true });
      // The admin sees and approves; the same session works at once.
      const list = await app.inject({
        method: "GET",
        url: "/api/admin/users?q=waiting",
        headers: bearer(admin.token),
      });
      const listed = (list.json() as { users: { id: string; pending: boolean }[] }).users[0];
      expect(listed?.pending).toBe(true);
      const approve = await app.inject({
        method: "POST",
        url: `/api/admin/users/${listed?.id}/approve`,
        headers: bearer(admin.token),
      });
      expect(approve.json()).toMatchObject({ pending: false });
      const after = await app.inject({
        method: "GET",
        url: "/api/conversations",
        headers: browser(s),
      });
      expect(after.statusCode).toBe(200);
      // A non-admin cannot approve.
      const other = await rawSignUp(app, "other@example.com");
      const otherId = (other.json() as { user: { id: string } }).user.id;
      const byUser = await app.inject({
        method: "POST",
        url: `/api/admin/users/${otherId}/approve`,
        headers: browser(s),
      });
      expect(byUser.statusCode).toBe(403);
    });

    it("bin/admin: invite, invitations, revoke-invitation, approve, signup-mode", async () => {
      const dir = mkdtempSync(join(tmpdir(), "gateway-invite-"));
      const config = testConfig(await databaseConfig(database, join(dir, "g.sqlite")));
      expect(await runAdmin(["signup-mode"], config)).toEqual([
        "sign-up mode: open (SIGNUP_MODE default: open)",
      ]);
      expect(await runAdmin(["signup-mode", "approval"], config)).toEqual([
        "sign-up mode: approval (SIGNUP_MODE default: open)",
      ]);
      await expect(runAdmin(["signup-mode", "everyone"], config)).rejects.toThrow(/one of/);
      const lines = await runAdmin(
        ["invite", "--email", "cli@example.com", "--role", "admin"],
        config,
      );
      expect(lines[0]).toMatch(/not mailed \(no SMTP_URL is set\)/);
      const link = lines[1] ?? "";
      expect(link).toMatch(/\/invite\?token=/);
      await expect(
        runAdmin(["invite", "--email", "x@example.com", "--role", "root"], config),
      ).rejects.toThrow(/--role/);
      const listed = await runAdmin(["invitations"], config);
      expect(listed[0]).toMatch(/cli@example\.com {2}admin {2}pending/);

      app = await buildApp(config);
      const token = new URL(link).searchParams.get("token");
      expect((await accept(app, { token })).json()).toMatchObject({ user: { role: "admin" } });
      expect((await rawSignUp(app, "queue@example.com")).statusCode).toBe(200);
      await app.close();

      expect(await runAdmin(["approve", "--email", "queue@example.com"], config)).toEqual([
        "queue@example.com is approved",
      ]);
      const second = await runAdmin(["invite", "--email", "two@example.com"], config);
      const id = (await runAdmin(["invitations"], config))[0]?.split(" ")[0] ?? "";
      expect(await runAdmin(["revoke-invitation", "--id", id], config)).toEqual([
        "invitation for two@example.com is revoked",
      ]);
      app = await buildApp(config);
      const revokedToken = new URL(second[1] ?? "").searchParams.get("token");
      expect((await accept(app, { token: revokedToken })).statusCode).toBe(403);
      const queued = await signIn(app, "queue@example.com", PASSWORD);
      const me = await app.inject({
        method: "GET",
        url: "/api/conversations",
        headers: bearer(queued.session?.token ?? ""),
      });
      expect(me.statusCode).toBe(200);
    });
  });

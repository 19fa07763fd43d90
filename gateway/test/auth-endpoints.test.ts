import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  browser,
  buildTestApp,
  JSON_CT,
  ORIGIN,
  type Session,
  signIn,
  signUp,
  signUpAdmin,
} from "./helpers.js";

const PASSWORD = "correct-horse-battery";

/** Spellings of one better-auth path: canonical, and ones its URL parsing would normalise. */
const spellings = (path: string) => [
  `/api/auth${path}`,
  `/api/auth/.${path}`,
  `/api/auth/%2e${path}`,
  `/api/auth/x/..${path}`,
  `/api/auth/x/%2E%2E${path}`,
  `/api/auth${path.replace(/\//g, "/./")}`,
];

describe("better-auth's endpoints that would go around the gateway's rules", {
  timeout: 60_000,
}, () => {
  let app: FastifyInstance;
  let admin: Session;
  let victim: Session;
  beforeEach(async () => {
    app = await buildTestApp({ requireAdmin2fa: true });
    admin = await signUpAdmin(app, "admin@example.org");
    victim = await signUp(app, "victim@example.org");
  }, 60_000);
  afterEach(async () => {
    await app.close();
  });

  const adminCalls = (victimId: string, adminId: string) =>
    [
      ["POST", "/admin/set-role", { userId: adminId, role: "user" }],
      ["POST", "/admin/set-role", { userId: victimId, role: "admin" }],
      ["POST", "/admin/set-user-password", { userId: victimId, newPassword: "taken-over-1" }],
      ["POST", "/admin/impersonate-user", { userId: victimId }],
      ["POST", "/admin/remove-user", { userId: victimId }],
      ["POST", "/admin/ban-user", { userId: victimId }],
      ["POST", "/admin/unban-user", { userId: victimId }],
      ["POST", "/admin/create-user", { email: "new@example.org", password: PASSWORD, name: "n" }],
      ["POST", "/admin/update-user", { userId: victimId, data: { role: "admin" } }],
      ["POST", "/admin/revoke-user-sessions", { userId: victimId }],
      ["POST", "/admin/list-user-sessions", { userId: victimId }],
      ["GET", "/admin/list-users", undefined],
      ["GET", `/admin/get-user?id=${victimId}`, undefined],
      ["POST", "/admin/has-permission", { permissions: { user: ["set-role"] } }],
    ] as const;

  it("/api/auth/admin/* answers 404 in every spelling and changes nothing", {
    timeout: 60_000,
  }, async () => {
    for (const [method, path, body] of adminCalls(victim.userId, admin.userId)) {
      for (const url of spellings(path)) {
        const res = await app.inject({
          method,
          url,
          headers: { ...bearer(admin.token), ...JSON_CT, origin: ORIGIN },
          ...(body ? { payload: body } : {}),
        });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404);
        expect(res.headers["set-cookie"], url).toBeUndefined();
      }
    }
    // Nothing happened: roles, password, the account and its sessions are as they were.
    const me = await app.inject({ method: "GET", url: "/api/user", headers: bearer(admin.token) });
    expect(me.json()).toMatchObject({ role: "admin" });
    const v = await app.inject({ method: "GET", url: "/api/user", headers: bearer(victim.token) });
    expect(v.json()).toMatchObject({ role: "user", email: "victim@example.org" });
    expect((await signIn(app, "victim@example.org", PASSWORD)).status).toBe(200);
    expect((await signIn(app, "new@example.org", PASSWORD)).status).toBe(401);
  });

  it("update-user cannot set role, email, ban, 2FA or verification; delete-user is 404", async () => {
    for (const data of [
      { role: "admin" },
      { email: "other@example.org" },
      { banned: false },
      { twoFactorEnabled: false },
      { emailVerified: true },
    ]) {
      for (const url of spellings("/update-user")) {
        const res = await app.inject({
          method: "POST",
          url,
          headers: { ...bearer(victim.token), ...JSON_CT, origin: ORIGIN },
          payload: data,
        });
        expect(
          res.statusCode,
          `${url} ${JSON.stringify(data)}: ${res.body}`,
        ).toBeGreaterThanOrEqual(400);
      }
    }
    const v = await app.inject({ method: "GET", url: "/api/user", headers: bearer(victim.token) });
    expect(v.json()).toMatchObject({ role: "user", email: "victim@example.org" });
    for (const url of spellings("/delete-user")) {
      const res = await app.inject({
        method: "POST",
        url,
        headers: { ...bearer(victim.token), ...JSON_CT, origin: ORIGIN },
        payload: { password: PASSWORD },
      });
      expect(res.statusCode, url).toBe(404);
    }
    expect((await signIn(app, "victim@example.org", PASSWORD)).status).toBe(200);
  });

  it("change-password ends the user's other sessions even when asked not to", async () => {
    const other = await signIn(app, "victim@example.org", PASSWORD);
    expect(other.session).not.toBeNull();
    const res = await app.inject({
      method: "POST",
      url: "/api/auth/change-password",
      headers: { ...browser(victim), ...JSON_CT },
      payload: {
        currentPassword: PASSWORD,
        newPassword: "a-new-password-1",
        revokeOtherSessions: false,
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const gone = await app.inject({
      method: "GET",
      url: "/api/user",
      headers: bearer(other.session?.token ?? ""),
    });
    expect(gone.statusCode).toBe(401);
    // The session that changed it goes on (better-auth hands it a fresh token).
    const token = String(res.headers["set-auth-token"] ?? res.json().token ?? "");
    const still = await app.inject({ method: "GET", url: "/api/user", headers: bearer(token) });
    expect(still.statusCode).toBe(200);
  });
});

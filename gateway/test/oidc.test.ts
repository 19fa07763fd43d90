import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { browser, cookiesOf, ORIGIN, signUp, testConfig } from "./helpers.js";

const CLIENT = { clientId: "gateway", clientSecret: "gateway-client-secret-0123456789" };

/** A real OpenID Connect provider (oidc-provider) on a free port, with its dev login pages. */
async function startIdp(): Promise<{ issuer: string; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.clientId,
        client_secret: CLIENT.clientSecret,
        redirect_uris: [`${ORIGIN}/api/auth/callback/oidc`],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@idp.example`, email_verified: true, name: sub }),
    }),
    pkce: { required: () => true },
    cookies: { keys: ["idp-cookie-key-for-tests"] },
  });
  server.on("request", provider.callback());
  return { issuer, server };
}

/** Plays the browser at the IdP: logs in as `login`, consents, returns the callback URL. */
async function loginAtIdp(authorizeUrl: string, login: string): Promise<URL> {
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  let next: { url: string; form?: Record<string, string> } = { url: authorizeUrl };
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(next.url, {
      method: next.form ? "POST" : "GET",
      redirect: "manual",
      headers: {
        cookie: cookie(),
        ...(next.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(next.form ? { body: new URLSearchParams(next.form).toString() } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const [k, ...v] = (pair ?? "").split("=");
      if (k) jar.set(k, v.join("="));
    }
    const location = res.headers.get("location");
    if (location) {
      const target = new URL(location, next.url);
      if (target.origin === ORIGIN) return target;
      next = { url: target.href };
      continue;
    }
    const html = await res.text();
    const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
    const prompt = html.match(/name="prompt" value="([^"]+)"/)?.[1];
    if (!action || !prompt)
      throw new Error(`unexpected IdP page ${res.status}: ${html.slice(0, 200)}`);
    next = {
      url: new URL(action, next.url).href,
      form: { prompt, login, password: "any" },
    };
  }
  throw new Error("too many redirects at the IdP");
}

describe("OpenID Connect sign-in", () => {
  let idp: { issuer: string; server: Server };
  let app: FastifyInstance;

  beforeAll(async () => {
    idp = await startIdp();
    app = await buildApp(
      testConfig({
        oauth: {
          oidc: { ...CLIENT, issuer: idp.issuer, name: "Test IdP" },
          github: { clientId: "gh-id", clientSecret: "gh-secret-value" },
          google: undefined,
        },
      }),
    );
  });
  afterAll(async () => {
    await app.close();
    idp.server.closeAllConnections();
    await new Promise((resolve) => idp.server.close(resolve));
  });

  async function oidcSignIn(login: string) {
    const start = await app.inject({
      method: "POST",
      url: "/api/auth/sign-in/social",
      headers: { origin: ORIGIN, "content-type": "application/json" },
      payload: { provider: "oidc", callbackURL: "/chat" },
    });
    expect(start.statusCode).toBe(200);
    const authorize = new URL(start.json().url);
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("state")).toBeTruthy();
    const callback = await loginAtIdp(authorize.href, login);
    return app.inject({
      method: "GET",
      url: `${callback.pathname}${callback.search}`,
      headers: { cookie: cookiesOf(start.headers) },
    });
  }

  it("lists the configured providers", async () => {
    const res = await app.inject({ method: "GET", url: "/api/auth-providers" });
    expect(res.json()).toEqual({
      providers: [
        { id: "oidc", name: "Test IdP" },
        { id: "github", name: "GitHub" },
      ],
    });
  });

  it("signs in through the IdP with PKCE and state, creating the account", async () => {
    const done = await oidcSignIn("alice");
    expect(done.statusCode).toBe(302);
    expect(done.headers.location).toBe("/chat");
    const session = { cookie: cookiesOf(done.headers), token: "", userId: "" };
    const me = await app.inject({ method: "GET", url: "/api/user", headers: browser(session) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ email: "alice@idp.example", role: "user" });

    // The same subject signs in to the same account.
    const again = await oidcSignIn("alice");
    const me2 = await app.inject({
      method: "GET",
      url: "/api/user",
      headers: browser({ cookie: cookiesOf(again.headers), token: "", userId: "" }),
    });
    expect(me2.json().id).toBe(me.json().id);
  });

  it("never merges into an existing password account with the same email", async () => {
    const existing = await signUp(app, "bob@idp.example");
    const done = await oidcSignIn("bob");
    expect(String(done.headers.location)).toMatch(/error/);
    expect(cookiesOf(done.headers)).not.toMatch(/session_token=[^;]/);
    const ctx = await app.auth.$context;
    const accounts = await ctx.internalAdapter.findAccounts(existing.userId);
    expect(accounts.map((a) => a.providerId)).toEqual(["credential"]);
  });

  it("obeys the sign-up policy: closed and invite refuse new accounts, not existing ones", async () => {
    // alice has an account from the test above; carol, dave and erin are new.
    const noSession = (headers: Record<string, unknown>) =>
      expect(cookiesOf(headers)).not.toMatch(/session_token=[^;]/);
    await app.auth.settings.setSignupMode("closed");
    const closed = await oidcSignIn("carol");
    expect(String(closed.headers.location)).toMatch(/error/);
    noSession(closed.headers);
    const returning = await oidcSignIn("alice");
    expect(returning.headers.location).toBe("/chat");

    await app.auth.settings.setSignupMode("invite");
    const uninvited = await oidcSignIn("dave");
    expect(String(uninvited.headers.location)).toMatch(/error/);
    noSession(uninvited.headers);
    const ctx = await app.auth.$context;
    for (const email of ["carol@idp.example", "dave@idp.example"]) {
      expect(await ctx.internalAdapter.findUserByEmail(email)).toBeNull();
    }
    // An invitation for the address the IdP vouches for lets it in, once, with its role.
    await app.auth.invitations.create("erin@idp.example", "admin", null);
    const invited = await oidcSignIn("erin");
    expect(invited.headers.location).toBe("/chat");
    const me = await app.inject({
      method: "GET",
      url: "/api/user",
      headers: browser({ cookie: cookiesOf(invited.headers), token: "", userId: "" }),
    });
    expect(me.json()).toMatchObject({ email: "erin@idp.example", role: "admin", pending: false });
    const [row] = await app.db.kysely.selectFrom("invitation").selectAll().execute();
    expect(row?.usedAt).not.toBeNull();

    await app.auth.settings.setSignupMode("approval");
    const waiting = await oidcSignIn("frank");
    expect(waiting.headers.location).toBe("/chat");
    const pending = await app.inject({
      method: "GET",
      url: "/api/conversations",
      headers: browser({ cookie: cookiesOf(waiting.headers), token: "", userId: "" }),
    });
    expect(pending.statusCode).toBe(403);
    expect(pending.json()).toMatchObject({ error: { code: "ACCOUNT_PENDING" } });
    await app.auth.settings.setSignupMode("open");
  });
});

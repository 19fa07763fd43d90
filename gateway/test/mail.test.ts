/**
 * Mail that arrives: a real SMTP server (npm `smtp-server`) on a free port in this process
 * receives the gateway's mails over a real socket; the tests follow the link in the received
 * message (password reset, email verification, invitation) and check that no token reaches
 * the log. Then the SMTP server is down: every request still answers, admins see the failure.
 */

import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import type { FastifyInstance } from "fastify";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import type { MailConfig } from "../src/config.js";
import {
  bearer,
  cookiesOf,
  JSON_CT,
  ORIGIN,
  signIn,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";

interface Received {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
}

/** An SMTP server on 127.0.0.1:0 that keeps what it receives; `auth` makes it require login. */
async function startSmtp(auth?: { user: string; pass: string }) {
  const inbox: Received[] = [];
  const server = new SMTPServer({
    // Plain SMTP on loopback: no STARTTLS offered (its default certificate is self-signed).
    disabledCommands: auth ? ["STARTTLS"] : ["STARTTLS", "AUTH"],
    allowInsecureAuth: true,
    authOptional: !auth,
    logger: false,
    onAuth(credentials, _session, callback) {
      if (auth && credentials.username === auth.user && credentials.password === auth.pass) {
        callback(null, { user: auth.user });
      } else callback(new Error("535 wrong credentials"));
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          inbox.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: mail.subject ?? "",
            text: mail.text ?? "",
            html: typeof mail.html === "string" ? mail.html : "",
          });
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    inbox,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Waits for the first mail to `to` whose subject matches. */
async function mailTo(inbox: Received[], to: string, subject: RegExp): Promise<Received> {
  for (let i = 0; i < 100; i++) {
    const found = inbox.find((m) => m.to.includes(to) && subject.test(m.subject));
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail to ${to} matching ${subject}`);
}

/** The one http(s) link of the plain-text body; the HTML body must carry the same. */
function linkIn(mail: Received): URL {
  const links = mail.text.match(/https?:\/\/\S+/g) ?? [];
  expect(links).toHaveLength(1);
  const link = links[0] ?? "";
  expect(mail.html).toContain(`href="${link.replace(/&/g, "&#38;")}"`);
  return new URL(link);
}

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const mailConfig = (port: number, extra: Partial<MailConfig> = {}): MailConfig => ({
  host: "127.0.0.1",
  port,
  secure: false,
  user: undefined,
  password: undefined,
  from: "LLM stack <llm@example.org>",
  ...extra,
});

describe("mail through a real SMTP server", () => {
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let app: FastifyInstance;
  let lines: string[];

  beforeAll(async () => {
    smtp = await startSmtp();
  });
  afterAll(async () => {
    await smtp.close();
  });
  afterEach(async () => {
    await app?.close();
  });

  async function start(extra: Parameters<typeof testConfig>[0] = {}) {
    lines = [];
    app = await buildApp(testConfig({ logLevel: "debug", mail: mailConfig(smtp.port), ...extra }), {
      logStream: { write: (l) => lines.push(l) },
    });
  }

  it("password reset: the mailed link resets the password; no token in the log", async () => {
    await start();
    await signUp(app, "reset@example.com", "old-password-1");
    const res = await app.inject({
      method: "POST",
      url: "/api/auth/request-password-reset",
      headers: { ...JSON_CT, origin: ORIGIN },
      payload: { email: "reset@example.com", redirectTo: `${ORIGIN}/reset-password` },
    });
    expect(res.statusCode).toBe(200);
    const mail = await mailTo(smtp.inbox, "reset@example.com", /Reset your/);
    expect(mail.from).toBe("llm@example.org");
    expect(mail.text).toContain("The link works once, for one hour");
    const link = linkIn(mail);
    // The link goes through better-auth, which sends the browser to the web's reset page.
    const opened = await app.inject({ method: "GET", url: link.pathname + link.search });
    expect(opened.statusCode).toBe(302);
    const landing = new URL(String(opened.headers.location));
    expect(landing.origin + landing.pathname).toBe(`${ORIGIN}/reset-password`);
    const token = landing.searchParams.get("token") ?? "";
    expect(token.length).toBeGreaterThan(10);
    const reset = await app.inject({
      method: "POST",
      url: "/api/auth/reset-password",
      headers: { ...JSON_CT, origin: ORIGIN },
      payload: { token, newPassword: "new-password-2" },
    });
    expect(reset.statusCode, reset.body).toBe(200);
    expect((await signIn(app, "reset@example.com", "new-password-2")).status).toBe(200);
    expect((await signIn(app, "reset@example.com", "old-password-1")).status).toBe(401);
    // Nothing of the link in the log, at debug level, with the requests that carried it.
    const log = lines.join("\n");
    expect(log).toContain("/api/auth/reset-password");
    expect(log).not.toContain(token);
    // An unknown address gets the same answer and no mail.
    const unknown = await app.inject({
      method: "POST",
      url: "/api/auth/request-password-reset",
      headers: { ...JSON_CT, origin: ORIGIN },
      payload: { email: "nobody@example.com", redirectTo: `${ORIGIN}/reset-password` },
    });
    expect(unknown.statusCode).toBe(200);
    expect(unknown.body).toBe(res.body);
  });

  it("email verification: sign-in waits for the mailed link", async () => {
    await start({ requireEmailVerification: true });
    const up = await app.inject({
      method: "POST",
      url: "/api/auth/sign-up/email",
      headers: { ...JSON_CT, origin: ORIGIN },
      payload: { email: "verify@example.com", password: "first-password-1", name: "V" },
    });
    expect(up.statusCode).toBe(200);
    expect(cookiesOf(up.headers)).not.toMatch(/session_token=[^;]/);
    const before = await signIn(app, "verify@example.com", "first-password-1");
    expect(before.status).toBe(403);
    const mail = await mailTo(smtp.inbox, "verify@example.com", /Confirm your email/);
    const link = linkIn(mail);
    expect(link.pathname).toBe("/api/auth/verify-email");
    const opened = await app.inject({ method: "GET", url: link.pathname + link.search });
    expect([200, 302]).toContain(opened.statusCode);
    expect((await signIn(app, "verify@example.com", "first-password-1")).status).toBe(200);
    expect(lines.join("\n")).not.toContain(link.searchParams.get("token") ?? "???");
  });

  it("invitation: mailed, followed, the account made; the admin gets no link back", async () => {
    await start({ signupMode: "invite" });
    await app.auth.settings.setSignupMode("open");
    const admin = await signUpAdmin(app, "boss@example.com");
    await app.auth.settings.setSignupMode("invite");
    const res = await app.inject({
      method: "POST",
      url: "/api/admin/invitations",
      headers: { ...bearer(admin.token), ...JSON_CT },
      payload: { email: "mate@example.com" },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ mail: { sent: true } });
    expect(res.json()).not.toHaveProperty("link");
    const mail = await mailTo(smtp.inbox, "mate@example.com", /invited/);
    expect(mail.text).toContain("Test Admin invited you");
    const link = linkIn(mail);
    expect(`${link.origin}${link.pathname}`).toBe(`${ORIGIN}/invite`);
    const token = link.searchParams.get("token") ?? "";
    const accepted = await app.inject({
      method: "POST",
      url: "/api/invitations/accept",
      headers: JSON_CT,
      payload: { token, name: "Mate", password: "mate-password-1" },
    });
    expect(accepted.statusCode).toBe(201);
    expect((await signIn(app, "mate@example.com", "mate-password-1")).status).toBe(200);
    expect(lines.join("\n")).not.toContain(token);
    const settings = await app.inject({
      method: "GET",
      url: "/api/admin/settings",
      headers: bearer(admin.token),
    });
    expect(settings.json()).toMatchObject({
      mail: { configured: true, failed: 0, lastFailure: null },
    });
  });

  it("logs in to the SMTP server with the configured user and password", async () => {
    const authed = await startSmtp({ user: "mailer", pass: "smtp-secret-1" });
    try {
      await start({ mail: mailConfig(authed.port, { user: "mailer", password: "smtp-secret-1" }) });
      const admin = await signUpAdmin(app, "boss@example.com");
      const res = await app.inject({
        method: "POST",
        url: "/api/admin/invitations",
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: { email: "x@example.com" },
      });
      expect(res.json()).toMatchObject({ mail: { sent: true } });
      await mailTo(authed.inbox, "x@example.com", /invited/);
      // A wrong password: the mail fails, the admin is told why and gets the link.
      await app.close();
      await start({ mail: mailConfig(authed.port, { user: "mailer", password: "wrong" }) });
      const admin2 = await signUpAdmin(app, "boss2@example.com");
      const failed = await app.inject({
        method: "POST",
        url: "/api/admin/invitations",
        headers: { ...bearer(admin2.token), ...JSON_CT },
        payload: { email: "y@example.com" },
      });
      expect(failed.statusCode).toBe(201);
      expect(failed.json()).toMatchObject({ mail: { sent: false, reason: "failed" } });
      expect(failed.json().mail.error).toMatch(/535|auth/i);
      expect(failed.json().link).toMatch(/\/invite\?token=/);
    } finally {
      await authed.close();
    }
  });

  it("SMTP down: every request still answers; the admin sees the failure", async () => {
    await start({ mail: mailConfig(await closedPort()) });
    const admin = await signUpAdmin(app, "boss@example.com");
    await signUp(app, "user@example.com");
    const reset = await app.inject({
      method: "POST",
      url: "/api/auth/request-password-reset",
      headers: { ...JSON_CT, origin: ORIGIN },
      payload: { email: "user@example.com", redirectTo: `${ORIGIN}/reset-password` },
    });
    expect(reset.statusCode).toBe(200);
    const invited = await app.inject({
      method: "POST",
      url: "/api/admin/invitations",
      headers: { ...bearer(admin.token), ...JSON_CT },
      payload: { email: "down@example.com" },
    });
    expect(invited.statusCode).toBe(201);
    const body = invited.json();
    expect(body.mail).toMatchObject({ sent: false, reason: "failed" });
    expect(body.mail.error).toMatch(/ECONNREFUSED/);
    const token = new URL(body.link).searchParams.get("token") ?? "";
    expect(token).not.toBe("");
    // The background reset mail has failed too by now.
    let settings = await app.inject({
      method: "GET",
      url: "/api/admin/settings",
      headers: bearer(admin.token),
    });
    for (let i = 0; i < 50 && settings.json().mail.failed < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      settings = await app.inject({
        method: "GET",
        url: "/api/admin/settings",
        headers: bearer(admin.token),
      });
    }
    expect(settings.json().mail).toMatchObject({ configured: true, sent: 0, failed: 2 });
    expect(settings.json().mail.lastFailure.error).toMatch(/ECONNREFUSED/);
    const log = lines.join("\n");
    expect(log).toContain("mail not sent");
    expect(log).not.toContain(token);
    expect(log).not.toMatch(/reset-password\/[\w-]{10,}/);
  });
});

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import { AdminSetup } from "../src/services/admin-setup.js";
import { UserService } from "../src/services/users.js";
import {
  bearer,
  DATABASES,
  databaseConfig,
  JSON_CT,
  postgresMissing,
  signIn,
  signUp,
  testConfig,
} from "./helpers.js";

const noPostgres = await postgresMissing();
const PASSWORD = "operator-password-1";

/** Starts an app that writes its operator lines and its log lines into arrays. */
async function start(config: ReturnType<typeof testConfig>) {
  const out: string[] = [];
  const log: string[] = [];
  const app = await buildApp(config, {
    operatorOut: { write: (l) => out.push(l) },
    logStream: { write: (l) => log.push(l) },
  });
  await app.ready();
  return { app, out, log };
}

const tokenOf = (lines: string[]) => /\/setup\?token=([\w-]+)/.exec(lines.join("\n"))?.[1] ?? "";

function setupPost(app: FastifyInstance, body: Record<string, unknown>) {
  return app.inject({ method: "POST", url: "/api/setup", headers: JSON_CT, payload: body });
}

const admin = (token: string, email = "ops@example.org") => ({
  token,
  email,
  password: PASSWORD,
  name: "Operator",
});

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `first admin setup (${database})`,
    { timeout: 60_000 },
    () => {
      it("prints one marked link on the operator channel, logs no token, stores only its hash", async () => {
        const { app, out, log } = await start(
          testConfig({ ...(await databaseConfig(database)), logLevel: "debug" }),
        );
        try {
          expect(out).toHaveLength(1);
          expect(out[0]).toMatch(/^SETUP \(operator only, not logged\): /);
          expect(out[0]).toContain("http://localhost:3000/setup?token=");
          const token = tokenOf(out);
          expect(token).toMatch(/^[\w-]{43}$/);
          const rows = await app.db.kysely
            .selectFrom("verification" as never)
            .selectAll()
            .execute();
          expect(JSON.stringify(rows)).not.toContain(token);
          expect(JSON.stringify(rows)).toContain("admin-setup:");
          const res = await setupPost(app, admin(token));
          expect(res.statusCode, res.body).toBe(201);
          expect(log.join("\n")).not.toContain(token);
        } finally {
          await app.close();
        }
      });

      it("makes an admin once: the link is single-use, a wrong or expired one is refused", async () => {
        const { app, out } = await start(testConfig(await databaseConfig(database)));
        try {
          const token = tokenOf(out);
          expect((await setupPost(app, admin("not-the-token"))).statusCode).toBe(403);
          const expired = await new AdminSetup(
            app.auth,
            app.db,
            new UserService(app.auth, app.db),
          ).issue(-1000);
          const old = await setupPost(app, admin(expired ?? ""));
          expect(old.statusCode).toBe(403);
          expect(old.json().error.code).toBe("SETUP_LINK_INVALID");
          // Bad input is a 400 and leaves the token usable.
          expect(
            (await setupPost(app, { ...admin(token), email: "not-an-email" })).statusCode,
          ).toBe(400);
          const short = await setupPost(app, { ...admin(token), password: "short" });
          expect(short.statusCode).toBe(400);
          expect(short.json().error.message).toMatch(/short/i);
          // Two requests at once with the same token: exactly one admin.
          const [a, b] = await Promise.all([
            setupPost(app, admin(token, "one@example.org")),
            setupPost(app, admin(token, "two@example.org")),
          ]);
          expect([a.statusCode, b.statusCode].sort()).toEqual([201, 403]);
          const winner = a.statusCode === 201 ? "one@example.org" : "two@example.org";
          const signedIn = await signIn(app, winner, PASSWORD);
          expect(signedIn.status).toBe(200);
          const me = await app.inject({
            method: "GET",
            url: "/api/admin/users",
            headers: bearer(signedIn.session?.token ?? ""),
          });
          expect(me.statusCode).toBe(200);
          // Used up, and no other link is valid once an admin exists.
          const again = await setupPost(app, admin(token, "three@example.org"));
          expect(again.statusCode).toBe(409);
          expect(again.json().error.code).toBe("ADMIN_EXISTS");
        } finally {
          await app.close();
        }
      });

      it("refuses an email that is taken without using the link up", async () => {
        const { app, out } = await start(testConfig(await databaseConfig(database)));
        try {
          const token = tokenOf(out);
          await signUp(app, "squatter@example.org");
          const taken = await setupPost(app, admin(token, "squatter@example.org"));
          expect(taken.statusCode).toBe(409);
          expect(taken.json().error.code).toBe("EMAIL_TAKEN");
          const me = await signIn(app, "squatter@example.org");
          const list = await app.inject({
            method: "GET",
            url: "/api/admin/users",
            headers: bearer(me.session?.token ?? ""),
          });
          expect(list.statusCode).toBe(403);
          expect((await setupPost(app, admin(token))).statusCode).toBe(201);
        } finally {
          await app.close();
        }
      });
    },
  );

describe("first admin setup across restarts and the command line", { timeout: 60_000 }, () => {
  it("prints a new link at every start while no admin exists, none after", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "gateway-setup-")), "gw.sqlite");
    const config = testConfig({ databasePath: path });
    const first = await start(config);
    const oldToken = tokenOf(first.out);
    await first.app.close();
    const second = await start(config);
    const token = tokenOf(second.out);
    expect(token).not.toBe(oldToken);
    try {
      expect((await setupPost(second.app, admin(token))).statusCode).toBe(201);
    } finally {
      await second.app.close();
    }
    const third = await start(config);
    try {
      expect(third.out).toEqual([]);
      expect((await setupPost(third.app, admin(oldToken, "late@example.org"))).statusCode).toBe(
        409,
      );
    } finally {
      await third.app.close();
    }
  });

  it("bin/admin create-user --role admin reads the password and ends the setup links", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "gateway-setup-cli-")), "gw.sqlite");
    const config = testConfig({ databasePath: path });
    const linkLines = await runAdmin(["setup-link"], config);
    const token = tokenOf(linkLines);
    expect(token).not.toBe("");
    const created = await runAdmin(
      ["create-user", "--email", "root@example.org", "--role", "admin"],
      config,
      { readPassword: async () => PASSWORD },
    );
    expect(created[0]).toMatch(/^created admin root@example\.org/);
    const { app } = await start(config);
    try {
      expect((await signIn(app, "root@example.org", PASSWORD)).status).toBe(200);
      expect((await setupPost(app, admin(token, "other@example.org"))).statusCode).toBe(409);
      const rows = await app.db.kysely
        .selectFrom("verification" as never)
        .selectAll()
        .execute();
      expect(JSON.stringify(rows)).not.toContain("admin-setup:");
    } finally {
      await app.close();
    }
  });
});

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import {
  bearer,
  DATABASES,
  databaseConfig,
  postgresMissing,
  signIn,
  testConfig,
} from "./helpers.js";

const noPostgres = await postgresMissing();

const root = resolve(import.meta.dirname, "..");
const tsxLoader = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

function tempDb(): string {
  return join(mkdtempSync(join(tmpdir(), "gateway-cli-")), "data", "gateway.sqlite");
}

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`admin command line (${database})`, () => {
    it("creates users, sets roles, disables, creates keys and resets passwords", async () => {
      const config = testConfig(await databaseConfig(database, tempDb()));
      const created = await runAdmin(
        [
          "create-user",
          "--email",
          "Ops@Example.org",
          "--password",
          "first-password-1",
          "--role",
          "user",
        ],
        config,
      );
      expect(created[0]).toMatch(/^created user ops@example\.org/);
      const promoted = await runAdmin(
        ["set-role", "--email", "ops@example.org", "--role", "admin"],
        config,
      );
      expect(promoted[0]).toContain("now admin");
      const keyLines = await runAdmin(["create-api-key", "--email", "ops@example.org"], config);
      const key = keyLines.at(-1) ?? "";
      expect(key).toMatch(/^llm_/);
      const reset = await runAdmin(["reset-password", "--email", "ops@example.org"], config);
      const password = reset.at(-1) ?? "";
      expect(password.length).toBeGreaterThanOrEqual(20);

      const app = await buildApp(config);
      try {
        const me = await app.inject({ method: "GET", url: "/api/user", headers: bearer(key) });
        expect(me.json()).toMatchObject({ email: "ops@example.org", role: "admin" });
        expect((await signIn(app, "ops@example.org", "first-password-1")).status).toBe(401);
        expect((await signIn(app, "ops@example.org", password)).status).toBe(200);
      } finally {
        await app.close();
      }

      await runAdmin(["disable", "--email", "ops@example.org"], config);
      const again = await buildApp(config);
      try {
        const me = await again.inject({ method: "GET", url: "/api/user", headers: bearer(key) });
        expect(me.statusCode).toBe(401);
      } finally {
        await again.close();
      }
    });

    // Seven processes, each loading TypeScript through tsx: slow on a busy machine.
    it("runs as a process: prints only the key last, and fails with one line and exit 1", {
      timeout: 180_000,
    }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "gateway-cli-proc-"));
      const db = await databaseConfig(database);
      writeFileSync(
        join(dir, ".env"),
        [
          "APP_ENV=production",
          `AUTH_SECRET=${"s".repeat(10)}k3J9xQ2vL8pR5tW1yZ7aB4cD6eF0gH2iJ`,
          "LLM_SERVER_TOKEN=llm-token-7f3a9c1e5b2d8f4a",
          db.databaseUrl ? `DATABASE_URL=${db.databaseUrl}` : "DATABASE_PATH=./db/gw.sqlite",
        ].join("\n"),
      );
      const runWith = (input: string, ...args: string[]) =>
        spawnSync(process.execPath, ["--import", tsxLoader, join(root, "src", "cli.ts"), ...args], {
          cwd: dir,
          env: { PATH: process.env.PATH ?? "" },
          encoding: "utf8",
          input,
        });
      const run = (...args: string[]) => runWith("", ...args);
      // The first admin, its password read from stdin (never on the command line).
      const link = run("setup-link");
      expect(link.status).toBe(0);
      expect(link.stdout).toMatch(/\/setup\?token=[\w-]{43}/);
      const ok = runWith(
        "password-123\n",
        "create-user",
        "--email",
        "a@example.org",
        "--role",
        "admin",
      );
      expect(ok.stderr).toBe("");
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(/created admin a@example\.org/);
      const noLink = run("setup-link");
      expect(noLink.status).toBe(1);
      expect(noLink.stderr).toBe(
        "admin: an admin account exists already: no setup link is needed\n",
      );
      const noPassword = run("create-user", "--email", "b@example.org");
      expect(noPassword.status).toBe(1);
      expect(noPassword.stderr).toBe("admin: give the password on stdin or with --password\n");
      const key = run("create-api-key", "--email", "a@example.org", "--name", "ci");
      expect(key.status).toBe(0);
      expect(key.stdout.trim().split("\n").at(-1)).toMatch(/^llm_[A-Za-z0-9]+$/);

      const missing = run("set-role", "--email", "nobody@example.org", "--role", "admin");
      expect(missing.status).toBe(1);
      expect(missing.stderr).toBe("admin: no user with email nobody@example.org\n");
      const badRole = run("set-role", "--email", "a@example.org", "--role", "root");
      expect(badRole.status).toBe(1);
      expect(badRole.stderr).toBe("admin: --role must be admin or user\n");
      const dup = run("create-user", "--email", "a@example.org", "--password", "password-123");
      expect(dup.stderr.trim().split("\n")).toHaveLength(1);
      expect(dup.status).toBe(1);
      // A generated password may start with "-": the space form says how to write it,
      // the "=" form takes it.
      const dashSpace = run(
        "create-user",
        "--email",
        "d@example.org",
        "--password",
        "-Xy9_pw-long",
      );
      expect(dashSpace.status).toBe(1);
      expect(dashSpace.stderr).toBe(
        'admin: a value of --password that starts with "-" must be written --password=VALUE\n',
      );
      const dashEquals = run("create-user", "--email", "d@example.org", "--password=-Xy9_pw-long");
      expect(dashEquals.stderr).toBe("");
      expect(dashEquals.status).toBe(0);
    });
  });

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { runAdmin } from "../src/cli.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  buildTestApp,
  chat,
  createApiKey,
  DATABASES,
  databaseConfig,
  JSON_CT,
  postgresMissing,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";

const noPostgres = await postgresMissing();

describe("model access admin API", () => {
  let app: FastifyInstance;
  let admin: Session;
  let user: Session;

  beforeAll(async () => {
    app = await buildTestApp();
    admin = await signUpAdmin(app, "admin@example.org");
    user = await signUp(app, "user@example.org");
  });
  afterAll(async () => {
    await app.close();
  });

  const send = (
    method: "GET" | "POST" | "DELETE",
    url: string,
    token: string,
    payload?: Record<string, unknown>,
  ) =>
    app.inject(
      payload === undefined
        ? { method, url, headers: bearer(token) }
        : { method, url, headers: { ...bearer(token), ...JSON_CT }, payload },
    );

  it("is for admins only: a user and their API key get 403", async () => {
    const key = (await createApiKey(app, user)).key;
    for (const token of [user.token, key]) {
      expect((await send("GET", "/api/admin/model-access", token)).statusCode).toBe(403);
      const rule = { model: "m", role: "user", allow: false };
      expect((await send("POST", "/api/admin/model-access", token, rule)).statusCode).toBe(403);
      const limit = { model: "m", role: "user", tokens_per_day: 5 };
      expect((await send("POST", "/api/admin/model-limits", token, limit)).statusCode).toBe(403);
      expect((await send("DELETE", "/api/admin/model-limits/x", token)).statusCode).toBe(403);
    }
    expect((await app.modelAccess.list()).rules).toEqual([]);
  });

  it("refuses bad input with 400 and a message", async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["/api/admin/model-access", { model: "m", role: "owner", allow: true }, /role/],
      ["/api/admin/model-access", { model: "m", allow: true }, /role or the email/],
      [
        "/api/admin/model-access",
        { model: "m", role: "user", email: "user@example.org", allow: true },
        /not both/,
      ],
      ["/api/admin/model-access", { model: "", role: "user", allow: true }, /model/],
      ["/api/admin/model-access", { model: "   ", role: "user", allow: true }, /model/],
      ["/api/admin/model-access", { model: "m".repeat(201), role: "user", allow: true }, /model/],
      ["/api/admin/model-access", { model: "m", role: "user", allow: "no" }, /allow/],
      ["/api/admin/model-access", { model: "a\u0000b", role: "user", allow: true }, /model/],
      ["/api/admin/model-access", { model: "a\nb", role: "user", allow: true }, /model/],
      [
        "/api/admin/model-access",
        { model: "m", email: "x\u0000@example.org", allow: true },
        /email/,
      ],
      [
        "/api/admin/model-access",
        { model: "m", email: "nobody@example.org", allow: true },
        /nobody/,
      ],
      ["/api/admin/model-access", { model: "m", role: "user", allow: true, x: 1 }, /additional/],
      [
        "/api/admin/model-limits",
        { model: "m", role: "user", tokens_per_day: -1 },
        /tokens_per_day/,
      ],
      [
        "/api/admin/model-limits",
        { model: "m", role: "user", tokens_per_day: 1.5 },
        /tokens_per_day/,
      ],
      [
        "/api/admin/model-limits",
        { model: "m", role: "user", tokens_per_day: 1e20 },
        /tokens_per_day/,
      ],
      [
        "/api/admin/model-limits",
        { model: "m", role: "user", tokens_per_day: "5" },
        /tokens_per_day/,
      ],
      ["/api/admin/model-limits", { model: "m", role: "user" }, /tokens_per_day/],
    ];
    for (const [url, body, message] of cases) {
      const res = await send("POST", url, admin.token, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.message, JSON.stringify(body)).toMatch(message);
    }
    expect(await app.modelAccess.list()).toEqual({ rules: [], limits: [] });
  });

  it("upserts one rule per model and subject, whatever the spelling, and deletes by id", async () => {
    const first = await send("POST", "/api/admin/model-access", admin.token, {
      model: "Gemma",
      email: "USER@example.org",
      allow: false,
    });
    expect(first.json()).toEqual({
      id: expect.any(String),
      model: "Gemma",
      user_id: user.userId,
      email: "user@example.org",
      allow: false,
    });
    const again = await send("POST", "/api/admin/model-access", admin.token, {
      model: " gemma ",
      email: "user@example.org",
      allow: true,
    });
    expect(again.json()).toMatchObject({ id: first.json().id, model: "gemma", allow: true });
    await send("POST", "/api/admin/model-limits", admin.token, {
      model: "gemma",
      role: "user",
      tokens_per_day: 1000,
    });
    const list = (await send("GET", "/api/admin/model-access", admin.token)).json();
    expect(list.rules).toEqual([
      {
        id: first.json().id,
        model: "gemma",
        user_id: user.userId,
        email: "user@example.org",
        allow: true,
      },
    ]);
    expect(list.limits).toEqual([
      { id: expect.any(String), model: "gemma", role: "user", tokens_per_day: 1000 },
    ]);
    const del = await send("DELETE", `/api/admin/model-limits/${list.limits[0].id}`, admin.token);
    expect(del.json()).toEqual({ ok: true });
    const gone = await send("DELETE", `/api/admin/model-limits/${list.limits[0].id}`, admin.token);
    expect(gone.statusCode).toBe(404);
    expect(
      (await send("DELETE", `/api/admin/model-access/${first.json().id}`, admin.token)).statusCode,
    ).toBe(200);
  });

  it("documents the routes in the OpenAPI document", async () => {
    const doc = (await app.inject({ method: "GET", url: "/docs/json" })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/admin/model-access",
        "/api/admin/model-access/{id}",
        "/api/admin/model-limits",
        "/api/admin/model-limits/{id}",
      ]),
    );
    const body = doc.paths["/api/admin/model-limits"].post.requestBody.content["application/json"];
    expect(body.schema.properties.tokens_per_day).toMatchObject({ type: "integer", minimum: 0 });
  });
});

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(
    `bin/admin model commands (${database})`,
    () => {
      let fake: FakeLlm;
      let config: ReturnType<typeof testConfig>;

      beforeAll(async () => {
        fake = await startFakeLlm();
        const dir = mkdtempSync(join(tmpdir(), "gateway-model-cli-"));
        config = testConfig({
          llmServerUrls: [fake.url],
          ...(await databaseConfig(database, join(dir, "g.sqlite"))),
        });
      }, PG_SETUP_TIMEOUT);
      afterAll(async () => {
        await fake.close();
      });

      it("allow-model, deny-model, set-model-limit and their removal are what the gateway enforces", async () => {
        const app = await buildApp(config);
        let s: Session;
        try {
          s = await signUp(app, "cli-user@example.org");
        } finally {
          await app.close();
        }
        expect(
          await runAdmin(["deny-model", "--model", "fake-model", "--role", "user"], config),
        ).toEqual(["role user may not use model fake-model"]);
        expect(
          await runAdmin(
            ["allow-model", "--model", "Fake-Model", "--email", "CLI-user@example.org"],
            config,
          ),
        ).toEqual(["cli-user@example.org may use model Fake-Model"]);
        expect(
          await runAdmin(
            ["set-model-limit", "--model", "fake-model", "--role", "user", "--tokens-per-day", "1"],
            config,
          ),
        ).toEqual([
          "role user: 1 tokens/day of model fake-model (per user, on top of the total quota)",
        ]);
        const listed = await runAdmin(["model-access"], config);
        expect(listed).toHaveLength(3);
        expect(listed.join("\n")).toMatch(/fake-model {2}role user {2}deny/);

        const gateway = await buildApp(config);
        try {
          const ask = () =>
            gateway.inject({
              method: "POST",
              url: "/v1/chat/completions",
              headers: { ...bearer(s.token), ...JSON_CT },
              payload: chat("hi"),
            });
          // Allowed by their own rule, but the role's limit of 1 token a day leaves no room.
          const limited = await ask();
          expect(limited.statusCode).toBe(429);
          expect(limited.json().error.message).toContain('model "fake-model"');
          await runAdmin(["remove-model-limit", "--model", "fake-model", "--role", "user"], config);
          await runAdmin(
            ["remove-model-rule", "--model", "fake-model", "--email", "cli-user@example.org"],
            config,
          );
          // A change by bin/admin reaches a running gateway within AUTH_CACHE_TTL_MS.
          await new Promise((r) => setTimeout(r, config.authCacheTtlMs + 100));
          const denied = await ask();
          expect(denied.statusCode).toBe(403);
          expect(denied.json().error.code).toBe("model_forbidden");
        } finally {
          await gateway.close();
        }
      });

      it("refuses bad options with one line", async () => {
        const bad: [string[], RegExp][] = [
          [["deny-model", "--role", "user"], /missing --model/],
          [["deny-model", "--model", "  ", "--role", "user"], /missing --model/],
          [["deny-model", "--model", "m"], /give --role or --email/],
          [["deny-model", "--model", "a\nb", "--role", "user"], /control characters/],
          [["deny-model", "--model", "m", "--role", "user", "--email", "a@b.c"], /not both/],
          [["deny-model", "--model", "m", "--role", "owner"], /--role must be admin or user/],
          [["deny-model", "--model", "m", "--email", "nobody@example.org"], /no user with email/],
          [["set-model-limit", "--model", "m", "--role", "user"], /missing --tokens-per-day/],
          [
            ["set-model-limit", "--model", "m", "--role", "user", "--tokens-per-day=-5"],
            /whole number/,
          ],
          [
            ["set-model-limit", "--model", "m", "--role", "user", "--tokens-per-day", "2.5"],
            /whole number/,
          ],
          [
            ["set-model-limit", "--model", "m", "--role", "user", "--tokens-per-day", "1e13"],
            /whole number/,
          ],
          [["remove-model-rule", "--model", "nothing", "--role", "user"], /has no rule/],
        ];
        for (const [argv, message] of bad) {
          await expect(runAdmin(argv, config), argv.join(" ")).rejects.toThrow(message);
        }
      });
    },
  );

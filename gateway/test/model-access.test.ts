import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  browser,
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
import { type ModelFront, startModelFront } from "./model-front.js";
import { PG_SETUP_TIMEOUT } from "./postgres.js";
import { dataEvents } from "./two-servers.js";

const noPostgres = await postgresMissing();

const chatBody = (
  model: string | undefined,
  content = "hi",
  extra: Record<string, unknown> = {},
) => ({
  ...(model === undefined ? {} : { model }),
  messages: [{ role: "user", content }],
  ...extra,
});

for (const database of DATABASES)
  describe.skipIf(database === "postgres" && noPostgres)(`access by model (${database})`, () => {
    let fake: FakeLlm;
    let front: ModelFront;
    let app: FastifyInstance;
    let base: string;
    let admin: Session;
    let user: Session;

    beforeAll(async () => {
      fake = await startFakeLlm();
      front = await startModelFront(fake.url);
      app = await buildApp(
        testConfig({ llmServerUrls: [front.url], ...(await databaseConfig(database)) }),
      );
      base = await app.listen({ port: 0, host: "127.0.0.1" });
      admin = await signUpAdmin(app, "admin@example.org");
      user = await signUp(app, "user@example.org");
    }, PG_SETUP_TIMEOUT);
    afterAll(async () => {
      await app.close();
      await front.close();
      await fake.close();
    });
    afterEach(async () => {
      // Rules are global: each test starts from none.
      const { rules, limits } = await app.modelAccess.list();
      for (const r of rules) await app.modelAccess.deleteRule(r.id);
      for (const l of limits) await app.modelAccess.deleteLimit(l.id);
    });

    async function adminPost(url: string, body: Record<string, unknown>) {
      const res = await app.inject({
        method: "POST",
        url,
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: body,
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { id: string };
    }
    const setRule = (body: Record<string, unknown>) => adminPost("/api/admin/model-access", body);
    const setLimit = (body: Record<string, unknown>) => adminPost("/api/admin/model-limits", body);
    const post = (token: string, url: string, body: unknown) =>
      fetch(`${base}${url}`, {
        method: "POST",
        headers: { ...bearer(token), ...JSON_CT },
        body: JSON.stringify(body),
      });
    const upstreamCalls = () => fake.requests.filter((r) => r.path !== "/health/ready").length;

    async function expectForbidden(res: Response, model: string, v1: boolean) {
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(v1 ? "model_forbidden" : "MODEL_FORBIDDEN");
      expect(body.error.message).toContain(`"${model}"`);
      expect(body.error.message).toMatch(/ask an administrator/);
    }

    it("with no rule every model is served and listed", async () => {
      expect((await post(user.token, "/v1/chat/completions", chatBody("other-model"))).status).toBe(
        200,
      );
      const list = await app.inject({
        method: "GET",
        url: "/api/models",
        headers: bearer(user.token),
      });
      expect(list.json().models.map((m: { id: string }) => m.id)).toEqual([
        "fake-model",
        "other-model",
      ]);
    });

    it("a role's deny refuses the model on every LLM route, however it is spelled, before any upstream call", async () => {
      await setRule({ model: "fake-model", role: "user", allow: false });
      const before = upstreamCalls();
      const key = (await createApiKey(app, user)).key;
      const spellings = ["fake-model", " FAKE-Model ", "default", "fake", "fake-alias", undefined];
      for (const model of spellings) {
        await expectForbidden(
          await post(user.token, "/v1/chat/completions", chatBody(model)),
          "fake-model",
          true,
        );
      }
      await expectForbidden(
        await post(key, "/v1/chat/completions", chatBody("fake-model", "hi", { stream: true })),
        "fake-model",
        true,
      );
      await expectForbidden(
        await post(user.token, "/v1/completions", { model: "fake", prompt: "hi" }),
        "fake-model",
        true,
      );
      for (const url of ["/api/llm/chat"]) {
        await expectForbidden(
          await post(user.token, url, chatBody("default")),
          "fake-model",
          false,
        );
      }
      await expectForbidden(
        await post(user.token, "/api/llm/generate", { prompt: "x" }),
        "fake-model",
        false,
      );
      await expectForbidden(
        await post(user.token, "/api/analyze", { text: "hello" }),
        "fake-model",
        false,
      );
      const conv = await app.inject({
        method: "POST",
        url: "/api/conversations",
        headers: { ...browser(user), ...JSON_CT },
        payload: {},
      });
      const turn = await fetch(`${base}/api/conversations/${conv.json().id}/messages`, {
        method: "POST",
        headers: { ...browser(user), ...JSON_CT },
        body: JSON.stringify({ content: "hi", model: "Fake" }),
      });
      await expectForbidden(turn, "fake-model", false);
      expect(upstreamCalls()).toBe(before);
      // The other model, and the same model for an admin, are still served.
      expect((await post(user.token, "/v1/chat/completions", chatBody("other"))).status).toBe(200);
      expect((await post(admin.token, "/v1/chat/completions", chatBody("fake-model"))).status).toBe(
        200,
      );
    });

    it("lists only the models the caller may use", async () => {
      await setRule({ model: "Other-Model", role: "user", allow: false });
      const api = await app.inject({
        method: "GET",
        url: "/api/models",
        headers: bearer(user.token),
      });
      expect(api.json()).toEqual({ models: [{ id: "fake-model", kind: "base" }] });
      const v1 = await app.inject({
        method: "GET",
        url: "/v1/models",
        headers: bearer(user.token),
      });
      expect(v1.json().data.map((m: { id: string }) => m.id)).toEqual(["fake-model"]);
      const asAdmin = await app.inject({
        method: "GET",
        url: "/v1/models",
        headers: bearer(admin.token),
      });
      expect(asAdmin.json().data).toHaveLength(2);
    });

    it("a user's own rule beats their role's, both ways", async () => {
      const other = await signUp(app, "other-user@example.org");
      await setRule({ model: "other-model", role: "user", allow: false });
      await setRule({ model: "other-model", email: "USER@example.org", allow: true });
      await setRule({ model: "fake-model", email: "other-user@example.org", allow: false });
      const ask = (s: Session, model: string) =>
        post(s.token, "/v1/chat/completions", chatBody(model));
      expect((await ask(user, "other-model")).status).toBe(200);
      await expectForbidden(await ask(other, "other-model"), "other-model", true);
      expect((await ask(user, "fake-model")).status).toBe(200);
      await expectForbidden(await ask(other, "fake-model"), "fake-model", true);
      // A user deny beats a role allow too.
      await setRule({ model: "fake-model", role: "user", allow: true });
      await expectForbidden(await ask(other, "default"), "fake-model", true);
    });

    it("never serves a cached answer of a model the caller may no longer use", async () => {
      const body = chatBody("fake-model", "cache me", { temperature: 0 });
      const first = await post(user.token, "/v1/chat/completions", body);
      expect(first.headers.get("x-cache")).toBe("MISS");
      const hit = await post(user.token, "/v1/chat/completions", body);
      expect(hit.headers.get("x-cache")).toBe("HIT");
      const rule = await setRule({ model: "fake-model", email: "user@example.org", allow: false });
      await expectForbidden(
        await post(user.token, "/v1/chat/completions", body),
        "fake-model",
        true,
      );
      await expectForbidden(
        await post(user.token, "/v1/chat/completions", { ...body, stream: true }),
        "fake-model",
        true,
      );
      const del = await app.inject({
        method: "DELETE",
        url: `/api/admin/model-access/${rule.id}`,
        headers: bearer(admin.token),
      });
      expect(del.statusCode).toBe(200);
      const again = await post(user.token, "/v1/chat/completions", body);
      expect(again.headers.get("x-cache")).toBe("HIT");
    });

    it("never overspends a per-model quota under a burst, and leaves the other model's alone", async () => {
      const s = await signUp(app, "burst@example.org");
      const limit = 100;
      await setLimit({ model: "fake-model", role: "user", tokens_per_day: 1_000_000 });
      await setLimit({ model: "FAKE-MODEL", email: "burst@example.org", tokens_per_day: limit });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          post(
            s.token,
            "/v1/chat/completions",
            chatBody(i % 2 ? "fake" : "default", "hi", { max_tokens: 3 }),
          ),
        ),
      );
      const ok = results.filter((r) => r.status === 200).length;
      const refused = results.filter((r) => r.status === 429);
      expect(ok).toBeGreaterThan(0);
      expect(refused.length).toBe(30 - ok);
      const first = refused[0] as Response;
      expect(Number(first.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const msg = ((await first.json()) as { error: { message: string } }).error.message;
      expect(msg).toContain('model "fake-model"');
      expect(msg).toContain(`${limit} tokens per day`);
      const usage = async () =>
        (
          await app.inject({ method: "GET", url: "/api/user/usage", headers: bearer(s.token) })
        ).json().quota;
      const quota = await usage();
      // The fake charges 5 prompt + 3 completion tokens per answer.
      expect(quota.models).toEqual([
        {
          model: "FAKE-MODEL",
          tokensPerDay: expect.objectContaining({ used: ok * 8, limit, remaining: limit - ok * 8 }),
        },
      ]);
      expect(ok * 8).toBeLessThanOrEqual(limit);
      // The other model has no quota of its own: still served, counted in the total only.
      expect((await post(s.token, "/v1/chat/completions", chatBody("other-model"))).status).toBe(
        200,
      );
      const after = await usage();
      expect(after.tokensPerDay.used).toBe(ok * 8 + 8);
      expect(after.models[0].tokensPerDay.used).toBe(ok * 8);
    });

    it("a user's per-model limit of 0 lifts their role's", async () => {
      const s = await signUp(app, "unlimited@example.org");
      await setLimit({ model: "other-model", role: "user", tokens_per_day: 1 });
      await setLimit({ model: "other-model", email: "unlimited@example.org", tokens_per_day: 0 });
      expect((await post(s.token, "/v1/chat/completions", chatBody("other"))).status).toBe(200);
      const res = await post(user.token, "/v1/chat/completions", chatBody("other"));
      expect(res.status).toBe(429);
    });

    it("a deny ends the calls of that model in flight, with an in-band error", async () => {
      const s = await signUp(app, "streaming@example.org");
      const open = (model: string) =>
        post(s.token, "/v1/chat/completions", chatBody(model, "SLOW", { stream: true }));
      // Started while no rule exists: the gate resolved no name for them.
      const [denied, other] = [await open(" Fake "), await open("other-model")];
      expect(denied.status).toBe(200);
      expect(other.status).toBe(200);
      const aborted = fake.nextAbort();
      await setRule({ model: "fake-model", role: "user", allow: false });
      const events = dataEvents(await denied.text());
      expect(JSON.parse(events[0] ?? "{}").choices[0].delta.content).toBe("Hel");
      expect(events).not.toContain("[DONE]");
      const error = JSON.parse(events.at(-1) ?? "{}").error;
      expect(error).toMatchObject({ code: "access_revoked", type: "permission_error" });
      expect(error.message).toContain("no longer available");
      await aborted;
      // The other model's stream is still running (checked again at once: still allowed).
      await app.calls.recheck();
      expect(app.calls.size).toBe(1);
      await other.body?.cancel();
    });

    it("deleting a user deletes their rules and limits", async () => {
      const s = await signUp(app, "gone@example.org");
      await setRule({ model: "fake-model", email: "gone@example.org", allow: false });
      await setLimit({ model: "fake-model", email: "gone@example.org", tokens_per_day: 5 });
      await setRule({ model: "fake-model", role: "user", allow: true });
      const del = await app.inject({
        method: "DELETE",
        url: `/api/admin/users/${s.userId}`,
        headers: bearer(admin.token),
      });
      expect(del.statusCode).toBe(200);
      const list = await app.inject({
        method: "GET",
        url: "/api/admin/model-access",
        headers: bearer(admin.token),
      });
      expect(list.json()).toEqual({
        rules: [{ id: expect.any(String), model: "fake-model", role: "user", allow: true }],
        limits: [],
      });
    });
  });

import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { parseRoutingFile } from "../src/config/routing-file.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  freePort,
  JSON_CT,
  type Session,
  signUp,
  signUpAdmin,
  testConfig,
} from "./helpers.js";
import { routingToml } from "./routing-toml.js";

/**
 * Access rules and per-model quotas with a routing file: names are the catalog's, and every
 * way of naming a model (alias, case, "default", none) meets the same rule and the same quota.
 */
describe("access by model with a routing file", () => {
  let llm: FakeLlm;
  let app: FastifyInstance;
  let base: string;
  let admin: Session;

  beforeAll(async () => {
    llm = await startFakeLlm();
    const file = routingToml(
      [
        {
          name: "local",
          aliases: ["gemma", "Small-One"],
          upstreams: [{ kind: "llm-server", url: llm.url, model: "fake-model" }],
        },
        { name: "second", upstreams: [{ kind: "llm-server", url: llm.url, model: "fake-model" }] },
        {
          name: "broken",
          fallbacks: ["second"],
          upstreams: [
            { kind: "llm-server", url: `http://127.0.0.1:${await freePort()}`, model: "x" },
          ],
        },
      ],
      "local",
    );
    const models = parseRoutingFile(file, "models.toml", {});
    app = await buildApp(testConfig({ models }));
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    admin = await signUpAdmin(app, "routing-access-admin@example.org");
  });
  afterAll(async () => {
    await app?.close();
    await llm?.close();
  });

  const adminPost = (url: string, body: unknown) =>
    app.inject({
      method: "POST",
      url,
      headers: { ...bearer(admin.token), ...JSON_CT },
      payload: body as Record<string, unknown>,
    });
  const ask = (s: Session, model: string | undefined, extra: Record<string, unknown> = {}) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(s.token), ...JSON_CT },
      body: JSON.stringify({
        ...(model === undefined ? {} : { model }),
        messages: [{ role: "user", content: "hi" }],
        ...extra,
      }),
    });
  const upstreamCalls = () => llm.requests.filter((r) => r.path !== "/health/ready").length;

  it("a deny of the catalog name holds for its aliases, any case, default and no model", async () => {
    const user = await signUp(app, "routing-denied@example.org");
    const rule = await adminPost("/api/admin/model-access", {
      model: "local",
      role: "user",
      allow: false,
    });
    expect(rule.statusCode).toBe(200);
    const before = upstreamCalls();
    for (const name of ["local", "LOCAL", "gemma", "small-one", "default", undefined]) {
      const res = await ask(user, name);
      expect(res.status, String(name)).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: "model_forbidden" });
      expect(body.error.message).toContain('"local"');
    }
    // Other spellings are no model of the catalog: refused too, never served.
    for (const name of [" local ", "local\t"]) expect((await ask(user, name)).status).not.toBe(200);
    expect(upstreamCalls()).toBe(before);
    expect((await ask(user, "second")).status).toBe(200);
    const listed = await fetch(`${base}/api/models`, { headers: bearer(user.token) });
    const ids = ((await listed.json()) as { models: { id: string }[] }).models.map((m) => m.id);
    expect(ids).toEqual(["second", "broken"]);
    await app.modelAccess.deleteRule(rule.json().id);
  });

  it("one per-model quota, whichever name the requests use", async () => {
    const user = await signUp(app, "routing-quota@example.org");
    const set = await adminPost("/api/admin/model-limits", {
      model: "LOCAL",
      email: "routing-quota@example.org",
      tokens_per_day: 60,
    });
    expect(set.statusCode).toBe(200);
    const names = ["local", "gemma", "Small-One", "default", undefined];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ask(user, names[i % names.length], { max_tokens: 3 })),
    );
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 429).length).toBe(20 - ok);
    const usage = await app.inject({
      method: "GET",
      url: "/api/user/usage",
      headers: bearer(user.token),
    });
    const [quota] = usage.json().quota.models;
    // The fake charges 5 prompt + 3 completion tokens per answer.
    expect(quota).toMatchObject({ model: "LOCAL", tokensPerDay: { used: ok * 8, limit: 60 } });
    expect(ok * 8).toBeLessThanOrEqual(60);
    expect((await ask(user, "second")).status).toBe(200);
    await app.modelAccess.deleteLimit(set.json().id);
  });

  it("a fallback the caller holds a per-model quota on is not used (it was not reserved)", async () => {
    const capped = await signUp(app, "routing-fallback-capped@example.org");
    const free = await signUp(app, "routing-fallback-free@example.org");
    const set = await adminPost("/api/admin/model-limits", {
      model: "second",
      email: "routing-fallback-capped@example.org",
      tokens_per_day: 1000,
    });
    expect(set.statusCode).toBe(200);
    // "broken" has no live upstream: the uncapped caller is answered by its fallback.
    const served = await ask(free, "broken", { max_tokens: 3 });
    expect(served.status).toBe(200);
    expect(((await served.json()) as { model: string }).model).toBe("second");
    // The capped one is not: "second" answering would spend its quota past the reservation.
    const before = upstreamCalls();
    const refused = await ask(capped, "broken", { max_tokens: 3 });
    expect(refused.status).toBeGreaterThanOrEqual(502);
    expect(upstreamCalls()).toBe(before);
    // Asked for by name, "second" is reserved and served as usual.
    expect((await ask(capped, "second", { max_tokens: 3 })).status).toBe(200);
    await app.modelAccess.deleteLimit(set.json().id);
  });
});

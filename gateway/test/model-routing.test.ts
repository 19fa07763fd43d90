import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { parseRoutingFile } from "../src/config/routing-file.js";
import { upstreamError } from "../src/services/llm-client.js";
import { llmServerTarget } from "../src/services/upstream.js";
import { SseParser } from "../src/sse.js";
import { type FakeLlm, readyWith, startFakeLlm } from "./fake-llm.js";
import { type FakeOpenAi, startFakeOpenAi } from "./fake-openai.js";
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
import { lastUsage } from "./two-servers.js";

const KEY = "sk-remote-key-that-must-never-leak-42";
const WRONG = "sk-wrong-key-that-must-never-leak-77";

/**
 * Routing by model through a routing file, over real sockets: an llm-server (the fake) and an
 * OpenAI-compatible server of another kind (its own key, base URL ending in /v1, no usage),
 * fallbacks, the model lists and the admin's view.
 */
describe("routing by model (GATEWAY_MODELS_FILE)", () => {
  let llm: FakeLlm;
  let remote: FakeOpenAi;
  let app: FastifyInstance;
  let base: string;
  let user: Session;
  let admin: Session;
  const logs: string[] = [];

  beforeAll(async () => {
    llm = await startFakeLlm();
    remote = await startFakeOpenAi(KEY, false);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const file = routingToml(
      [
        {
          name: "local",
          aliases: ["gemma"],
          kind: "base",
          upstreams: [{ kind: "llm-server", url: llm.url, model: "fake-model" }],
        },
        {
          name: "remote",
          kind: "chat",
          upstreams: [
            { kind: "openai", url: remote.url, model: "upstream-model", api_key_env: "REMOTE_KEY" },
          ],
        },
        {
          name: "broken",
          fallbacks: ["remote"],
          upstreams: [{ kind: "llm-server", url: dead, model: "x" }],
        },
        {
          name: "wrong-key",
          upstreams: [
            { kind: "openai", url: remote.url, model: "upstream-model", api_key_env: "WRONG_KEY" },
          ],
        },
      ],
      "local",
    );
    const models = parseRoutingFile(file, "models.toml", { REMOTE_KEY: KEY, WRONG_KEY: WRONG });
    app = await buildApp(testConfig({ models, logLevel: "info" }), {
      logStream: { write: (line) => void logs.push(line) },
    });
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    admin = await signUpAdmin(app, "routing-admin@example.org");
    user = await signUp(app, "routing-user@example.org");
  });

  afterAll(async () => {
    await app?.close();
    await llm?.close();
    await remote?.close();
    // Nothing the gateway logged carries the upstreams' keys.
    const all = logs.join("");
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(WRONG);
  });

  const post = (body: Record<string, unknown>, path = "/v1/chat/completions") =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { ...bearer(user.token), ...JSON_CT },
      body: JSON.stringify(body),
    });
  const ask = (model: unknown, extra: Record<string, unknown> = {}) =>
    post({
      ...(model === undefined ? {} : { model }),
      messages: [{ role: "user", content: "hi" }],
      ...extra,
    });

  async function events(res: Response): Promise<string[]> {
    const parser = new SseParser();
    const out: string[] = [];
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>)
      out.push(...parser.push(part));
    return out;
  }

  async function lastRow(): Promise<Record<string, unknown> | undefined> {
    await app.services.usage.flush();
    return lastUsage(app, user.userId);
  }

  it("sends each name and alias to its pool, with the upstream's model name; answers name the public model", async () => {
    for (const [asked, expected] of [
      ["local", "local"],
      ["gemma", "local"],
      ["GEMMA", "local"],
      [undefined, "local"],
      ["default", "local"],
    ] as const) {
      const res = await ask(asked);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { model: string }).model).toBe(expected);
      expect(llm.requests.at(-1)?.body?.model).toBe("fake-model");
    }
    const res = await ask("remote");
    expect(res.status).toBe(200);
    expect((await res.json()) as Record<string, unknown>).toMatchObject({ model: "remote" });
    const seen = remote.requests.at(-1);
    expect(seen).toMatchObject({ path: "/v1/chat/completions", auth: `Bearer ${KEY}` });
    expect(seen?.body?.model).toBe("upstream-model");
    // No usage in its JSON answer: "Bonjour!" counted at 4 bytes a token, marked estimated.
    expect(await lastRow()).toMatchObject({ model: "remote", estimated: 1, completionTokens: 2 });
  });

  it("streams from an upstream without usage: the model renamed, usage counted and marked estimated", async () => {
    const res = await ask("remote", { stream: true });
    expect(res.status).toBe(200);
    const list = await events(res);
    expect(list.at(-1)).toBe("[DONE]");
    const chunks = list
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { model: string; choices: unknown[] });
    expect(new Set(chunks.map((c) => c.model))).toEqual(new Set(["remote"]));
    expect(remote.requests.at(-1)?.body?.stream_options).toEqual({ include_usage: true });
    const row = await lastRow();
    expect(row).toMatchObject({ model: "remote", status: 200, completionTokens: 3, estimated: 1 });
    expect(row?.promptTokens as number).toBeGreaterThan(0);
    // An llm-server that reports usage: exact; its extra usage chunk stays with the gateway.
    const local = await events(await ask("local", { stream: true }));
    expect(local.some((e) => e.includes('"usage"'))).toBe(false);
    expect(await lastRow()).toMatchObject({
      model: "local",
      promptTokens: 5,
      completionTokens: 3,
      estimated: 0,
    });
  });

  it("answers 404 naming an unknown model, calling no upstream", async () => {
    const before = llm.requests.length + remote.requests.length;
    for (const name of [
      "nope",
      " local",
      "local ",
      "gemma-3-270m",
      "upstream-model",
      "",
      "x".repeat(5000),
    ]) {
      const res = await ask(name);
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string; type: string } };
      expect(body.error.code).toBe("model_not_found");
      expect(body.error.type).toBe("not_found_error");
      expect(body.error.message).toContain(`"${name.slice(0, 128)}`);
      expect(body.error.message.length).toBeLessThan(300);
    }
    const res = await post(
      { model: "nope", messages: [{ role: "user", content: "hi" }] },
      "/api/llm/chat",
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("MODEL_NOT_FOUND");
    expect(llm.requests.length + remote.requests.length).toBe(before);
  });

  it("refuses a model that is not a string with a 400", async () => {
    for (const model of [12, ["local"], { name: "local" }, null, true]) {
      const res = await ask(model);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/model/);
    }
  });

  it("falls back to the next model when the whole pool is down; the answer names the fallback", async () => {
    const res = await ask("broken");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe("remote");
    expect(await lastRow()).toMatchObject({ model: "remote", status: 200 });
    const stream = await events(await ask("broken", { stream: true }));
    expect(JSON.parse(stream[0] ?? "{}")).toMatchObject({ model: "remote" });
  });

  it("skips a fallback the caller may not use; access rules follow aliases and spellings", async () => {
    const rule = await fetch(`${base}/api/admin/model-access`, {
      method: "POST",
      headers: { ...bearer(admin.token), ...JSON_CT },
      body: JSON.stringify({ model: "remote", role: "user", allow: false }),
    });
    expect(rule.status).toBe(200);
    const { id } = (await rule.json()) as { id: string };
    try {
      const denied = await ask("Remote");
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as { error: { message: string } }).error.message).toContain(
        '"remote"',
      );
      // "broken" is down and its only fallback is denied to this user: no answer from it.
      const before = remote.requests.length;
      expect((await ask("broken")).status).toBe(503);
      expect(remote.requests.length).toBe(before);
      const listed = await fetch(`${base}/v1/models`, { headers: bearer(user.token) });
      const ids = ((await listed.json()) as { data: { id: string }[] }).data.map((m) => m.id);
      expect(ids).toEqual(["local", "broken", "wrong-key"]);
    } finally {
      await fetch(`${base}/api/admin/model-access/${id}`, {
        method: "DELETE",
        headers: bearer(admin.token),
      });
    }
  });

  it("maps an OpenAI upstream's errors: the client's 4xx with its message; its own refusal 502 without the key", async () => {
    const refused = await post({
      model: "remote",
      messages: [{ role: "user", content: "ERROR400" }],
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({
      error: {
        message: "This model's maximum context length is 8 tokens",
        code: "context_length_exceeded",
      },
    });
    const streamed = await post(
      { model: "remote", stream: true, messages: [{ role: "user", content: "ERROR400" }] },
      "/api/llm/chat",
    );
    expect(streamed.status).toBe(400);
    expect(await streamed.json()).toMatchObject({ error: { code: "CONTEXT_LENGTH_EXCEEDED" } });
    const wrong = await ask("wrong-key");
    expect(wrong.status).toBe(502);
    const text = await wrong.text();
    expect(text).toContain("refused the gateway (401)");
    expect(text).not.toContain(WRONG);
    const failed = await post({
      model: "remote",
      messages: [{ role: "user", content: "ERROR500" }],
    });
    expect(failed.status).toBe(502);
    // A client's 400 never counts toward ejection; the refused key does.
    const servers = app.services.router.snapshot().servers;
    expect(servers.find((s) => s.url === remote.url)?.state).not.toBe("ejected");
  });

  it("lists the models with kind, state and default; the admin sees upstreams and usage, never a key", async () => {
    await app.services.router.checkAll();
    const v1 = await fetch(`${base}/v1/models`, { headers: bearer(user.token) });
    expect(v1.status).toBe(200);
    const data = ((await v1.json()) as { data: Record<string, unknown>[] }).data;
    expect(data.map((m) => m.id)).toEqual(["local", "remote", "broken", "wrong-key"]);
    expect(data[0]).toMatchObject({ object: "model", kind: "base", state: "ready", default: true });
    expect(data[2]).toMatchObject({ id: "broken", state: "down", default: false });
    const api = await fetch(`${base}/api/models`, { headers: bearer(user.token) });
    expect(((await api.json()) as { models: unknown[] }).models).toContainEqual({
      id: "remote",
      kind: "chat",
      state: "ready",
      default: false,
    });
    expect((await fetch(`${base}/api/admin/models`, { headers: bearer(user.token) })).status).toBe(
      403,
    );
    const res = await fetch(`${base}/api/admin/models`, { headers: bearer(admin.token) });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(WRONG);
    const models = (JSON.parse(text) as { models: Record<string, unknown>[] }).models;
    const remoteModel = models.find((m) => m.id === "remote");
    expect(remoteModel).toMatchObject({
      aliases: [],
      kind: "chat",
      state: "ready",
      fallbacks: [],
      upstreams: [
        { kind: "openai", url: remote.url, model: "upstream-model", weight: 1, state: "up" },
      ],
    });
    expect(
      (remoteModel?.usage as { requests_today: number } | undefined)?.requests_today,
    ).toBeGreaterThan(3);
    expect(models.find((m) => m.id === "broken")).toMatchObject({
      state: "down",
      fallbacks: ["remote"],
      upstreams: [{ kind: "llm-server", state: "down" }],
    });
    for (const path of ["/api/admin/servers", "/metrics", "/health/ready"]) {
      const answer = await fetch(`${base}${path}`, { headers: bearer(admin.token) });
      const body = await answer.text();
      expect(body).not.toContain(KEY);
      expect(body).not.toContain(WRONG);
    }
  });
});

describe("without a routing file", () => {
  it("sends the model as asked to LLM_SERVER_URLS; the admin's list shows what the llm-servers report", async () => {
    const a = await startFakeLlm();
    a.health = readyWith([
      { id: "gemma", state: "loaded" },
      { id: "tiny", state: "unloaded" },
    ]);
    const app = await buildApp(testConfig({ llmServerUrls: [a.url] }));
    try {
      const admin = await signUpAdmin(app, "no-file@example.org");
      const asked = await app.inject({
        method: "POST",
        url: "/v1/chat/completions",
        headers: { ...bearer(admin.token), ...JSON_CT },
        payload: { model: "Whatever Name", messages: [{ role: "user", content: "hi" }] },
      });
      expect(asked.statusCode).toBe(200);
      expect(a.requests.at(-1)?.body?.model).toBe("Whatever Name");
      const res = await app.inject({
        method: "GET",
        url: "/api/admin/models",
        headers: bearer(admin.token),
      });
      expect(res.statusCode).toBe(200);
      const upstream = { kind: "llm-server", url: a.url, weight: 1, state: "up" };
      expect((res.json() as { models: unknown[] }).models).toEqual([
        {
          id: "gemma",
          aliases: [],
          state: "ready",
          default: false,
          fallbacks: [],
          upstreams: [{ ...upstream, model: "gemma" }],
          usage: { requests_today: 0, tokens_today: 0 },
        },
        {
          id: "tiny",
          aliases: [],
          state: "unloaded",
          default: false,
          fallbacks: [],
          upstreams: [{ ...upstream, model: "tiny" }],
          usage: { requests_today: 0, tokens_today: 0 },
        },
      ]);
    } finally {
      await app.close();
      await a.close();
    }
  });
});

describe("a 503 from upstream", () => {
  it("from our llm-server (a model loading) keeps its message and Retry-After; another server's is generic", () => {
    const body = JSON.stringify({
      error: {
        message: "the model 'tiny' is loading; retry in a few seconds",
        code: "unavailable",
      },
    });
    const ours = upstreamError(503, body, llmServerTarget("http://10.0.0.5:8000"), "3");
    expect(ours).toMatchObject({
      statusCode: 503,
      code: "LLM_UNAVAILABLE",
      message: "the model 'tiny' is loading; retry in a few seconds",
      headers: { "retry-after": "3" },
    });
    const other = { ...llmServerTarget("http://10.0.0.6:8000/v1"), kind: "openai" as const };
    const theirs = upstreamError(503, body, other, "3");
    expect(theirs).toMatchObject({ message: "The model server is unavailable", headers: {} });
  });
});

describe("weights in a pool", () => {
  it("share requests by weight when the upstreams are equally loaded (3:1)", async () => {
    const heavy = await startFakeLlm();
    const light = await startFakeLlm();
    const file = routingToml([
      {
        name: "pair",
        upstreams: [
          { kind: "llm-server", url: heavy.url, model: "fake-model", weight: 3 },
          { kind: "llm-server", url: light.url, model: "fake-model", weight: 1 },
        ],
      },
    ]);
    const app = await buildApp(testConfig({ models: parseRoutingFile(file, "w.toml", {}) }));
    try {
      const s = await signUpAdmin(app, "weights@example.org");
      for (let i = 0; i < 8; i++) {
        const res = await app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: { ...bearer(s.token), ...JSON_CT },
          payload: { model: "pair", messages: [{ role: "user", content: `hi ${i}` }] },
        });
        expect(res.statusCode).toBe(200);
      }
      const calls = (f: FakeLlm) =>
        f.requests.filter((r) => r.path === "/v1/chat/completions").length;
      expect([calls(heavy), calls(light)]).toEqual([6, 2]);
    } finally {
      await app.close();
      await heavy.close();
      await light.close();
    }
  });
});

describe("a model the llm-server reports not loaded", () => {
  it("gets past the headers timeout for its stream (it loads first); a loaded one does not", async () => {
    const a = await startFakeLlm();
    a.health = readyWith([
      { id: "cold", state: "unloaded" },
      { id: "warm", state: "loaded" },
    ]);
    const app = await buildApp(testConfig({ llmServerUrls: [a.url], headersTimeoutMs: 300 }));
    try {
      const s = await signUpAdmin(app, "cold@example.org");
      await app.services.router.checked();
      // WAIT: the fake sends not even headers until released (a model loading, here).
      const stream = (model: string) =>
        app.inject({
          method: "POST",
          url: "/v1/chat/completions",
          headers: { ...bearer(s.token), ...JSON_CT },
          payload: { model, stream: true, messages: [{ role: "user", content: "WAIT" }] },
        });
      const cold = stream("cold");
      await new Promise((r) => setTimeout(r, 900));
      a.releaseHeld();
      const answered = await cold;
      expect(answered.statusCode).toBe(200);
      expect(answered.body).toContain("[DONE]");
      const warm = await stream("warm");
      expect(warm.statusCode).toBe(504);
      a.releaseHeld();
    } finally {
      await app.close();
      await a.close();
    }
  });
});

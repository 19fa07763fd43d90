import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { type FakeLlm, startFakeLlm } from "./fake-llm.js";
import {
  bearer,
  browser,
  createApiKey,
  JSON_CT,
  type Session,
  signUp,
  testConfig,
} from "./helpers.js";

describe("LLM proxy", () => {
  let fake: FakeLlm;
  let app: FastifyInstance;
  let base: string;
  let s: Session;
  let key: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    fake = await startFakeLlm();
    app = await buildApp(
      testConfig({ llmServerUrls: [fake.url], idleTimeoutMs: 300, logLevel: "info" }),
      { logStream: { write: (line) => logLines.push(line) } },
    );
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    s = await signUp(app, "llm@example.org");
    key = (await createApiKey(app, s)).key;
  });
  afterAll(async () => {
    await app.close();
    await fake.close();
  });

  const chat = (content: string, extra: Record<string, unknown> = {}) => ({
    model: "fake-model",
    messages: [{ role: "user", content }],
    ...extra,
  });

  it("GET /v1/models passes llm-server's list through, with service headers upstream", async () => {
    const res = await fetch(`${base}/v1/models`, { headers: { ...bearer(key), cookie: s.cookie } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      object: "list",
      data: [{ id: "fake-model", object: "model", kind: "base" }],
    });
    const upstream = fake.requests.findLast((r) => r.path === "/v1/models");
    expect(upstream?.headers.authorization).toBe("Bearer test-llm-server-token-0123456789");
    expect(upstream?.headers["x-client-id"]).toBe(s.userId);
    expect(upstream?.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstream?.headers.cookie).toBeUndefined();
  });

  it("answers 401 in OpenAI's error shape without a valid key", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer("llm_wrong"), ...JSON_CT },
      body: JSON.stringify(chat("hi")),
    });
    expect(res.status).toBe(401);
    const body = (await res.json()) as {
      error: Record<string, unknown>;
      choices: { message: { content: string } }[];
    };
    expect(body.error).toMatchObject({ type: "authentication_error", code: "unauthorized" });
    expect(body.error).toHaveProperty("param", null);
  });

  it("proxies a non-streaming chat completion", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("hi", { temperature: 0.2 })),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      error: Record<string, unknown>;
      choices: { message: { content: string } }[];
    };
    expect(body.choices[0]?.message.content).toBe("Hello world");
    expect(fake.requests.at(-1)?.body).toMatchObject({ temperature: 0.2 });
  });

  it("streams SSE through unchanged, ending with [DONE]", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("hi", { stream: true })),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const datas = text.split("\n\n").filter((b) => b.startsWith("data: "));
    expect(datas.at(-1)).toBe("data: [DONE]");
    const content = datas
      .slice(0, -1)
      .map((d) => JSON.parse(d.slice(6)).choices[0].delta.content)
      .join("");
    expect(content).toBe("Hello world");
  });

  it("declares both of a completion's content types in /docs/json", async () => {
    const doc = (await app.inject({ method: "GET", url: "/docs/json" })).json();
    for (const path of ["/v1/chat/completions", "/v1/completions", "/api/llm/chat"]) {
      const content = doc.paths[path].post.responses["200"].content;
      expect(Object.keys(content).sort(), path).toEqual(["application/json", "text/event-stream"]);
    }
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("hi", { stream: true })),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await res.text();
  });

  it("streams /v1/completions too", async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify({ model: "fake-model", prompt: "Once", stream: true }),
    });
    const text = await res.text();
    expect(text).toContain('"text":"Hel"');
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
  });

  it("forwards an upstream 400 unchanged", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("ERROR400")),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({
      message: "prompt too long",
      code: "context_length_exceeded",
    });
  });

  it("rejects a malformed request before calling upstream", async () => {
    const before = fake.requests.length;
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify({ messages: [] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe(
      "invalid_request_error",
    );
    expect(fake.requests.length).toBe(before);
  });

  it("aborts the upstream request when the client disconnects mid-stream", async () => {
    const aborted = fake.nextAbort();
    const controller = new AbortController();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("SLOW", { stream: true })),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain("Hel");
    controller.abort();
    await expect(
      Promise.race([
        aborted.then(() => "aborted"),
        new Promise((r) => setTimeout(r, 2000, "late")),
      ]),
    ).resolves.toBe("aborted");
    // One log line per request: the left stream's too, though its reply never finished.
    const logged = logLines.map(
      (l) => JSON.parse(l) as { msg: string; req?: { url: string }; res?: { statusCode: number } },
    );
    const left = logged.filter((l) => l.msg === "request closed before its answer finished");
    expect(left.map((l) => l.req?.url)).toEqual(["/v1/chat/completions"]);
    const done = logged.filter((l) => l.msg === "request completed");
    expect(done.length).toBeGreaterThan(0);
    expect(done.every((l) => typeof l.res?.statusCode === "number" && l.req?.url)).toBe(true);
    expect(logged.some((l) => l.msg === "incoming request")).toBe(false);
    expect(logLines.join("\n")).not.toContain(key);
  });

  it("turns an upstream crash mid-stream into an in-band error event", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("CRASH", { stream: true })),
    });
    const text = await res.text();
    expect(text).toContain("Hel");
    expect(text).toContain('"error"');
    expect(text).not.toContain("[DONE]");
  });

  it("ends a silent stream with an idle-timeout error", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(key), ...JSON_CT },
      body: JSON.stringify(chat("SLOW", { stream: true })),
    });
    const text = await res.text();
    expect(text).toContain("idle timeout");
  });

  it("GET /api/models lists model ids for a browser session", async () => {
    const res = await app.inject({ method: "GET", url: "/api/models", headers: browser(s) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ models: [{ id: "fake-model", kind: "base" }] });
    expect(fake.requests.at(-1)?.headers.cookie).toBeUndefined();
  });

  it("POST /api/analyze forwards to /analyze", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/analyze",
      headers: { ...browser(s), ...JSON_CT },
      payload: { text: "hi", labels: ["a", "b"] },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ model: "fake-model", perplexity: 2.5 });
    expect(fake.requests.at(-1)).toMatchObject({
      path: "/analyze",
      body: { text: "hi", labels: ["a", "b"] },
    });
  });
});

describe("LLM proxy without a reachable llm-server", () => {
  it("answers 503 in the gateway envelope on /api and OpenAI's on /v1", async () => {
    const app = await buildApp(testConfig({ llmServerUrls: ["http://127.0.0.1:1"] }));
    try {
      const s = await signUp(app, "x@example.org");
      const api = await app.inject({ method: "GET", url: "/api/models", headers: browser(s) });
      expect(api.statusCode).toBe(503);
      expect(api.json()).toEqual({
        error: {
          code: "LLM_UNAVAILABLE",
          type: "server_error",
          message: "No model server is reachable",
        },
      });
      const v1 = await app.inject({ method: "GET", url: "/v1/models", headers: bearer(s.token) });
      expect(v1.statusCode).toBe(503);
      expect(v1.json().error.type).toBe("server_error");
    } finally {
      await app.close();
    }
  });
});

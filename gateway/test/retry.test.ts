import { afterEach, describe, expect, it } from "vitest";
import type { FakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp } from "./helpers.js";
import {
  type Cleanup,
  dataEvents,
  lastUsage as lastRow,
  runCleanup,
  twoServers,
} from "./two-servers.js";

const calls = (f: FakeLlm, path = "/v1/chat/completions") =>
  f.requests.filter((r) => r.path === path).length;

/**
 * "Retry on another server only before the first byte reached the client; never after":
 * two fake llm-servers, the first one preferred (the second reports load), the first one
 * failing in different ways.
 */
describe("retry up to the first byte sent to the client", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  async function setup() {
    const { a, b, app, url } = await twoServers(cleanup);
    const s = await signUp(app, "retry@example.org");
    const post = (body: unknown) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
      });
    const lastUsage = () => lastRow(app, s.userId);
    const server = (u: string) =>
      app.services.balancer.snapshot().servers.find((x) => x.url === u) as { failures: number };
    return { a, b, app, s, post, lastUsage, server };
  }

  it("a stream whose server dies after its headers is answered by the other server", async () => {
    const { a, b, post, lastUsage, server, app } = await setup();
    a.failure = "after-headers";
    const res = await post(chat("hi", { stream: true }));
    expect(res.status).toBe(200);
    const events = dataEvents(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.some((e) => e.includes('"error"'))).toBe(false);
    expect(events.map((e) => (e === "[DONE]" ? "" : e)).join("")).toContain("world");
    expect(calls(a)).toBe(1);
    expect(calls(b)).toBe(1);
    expect(server(a.url).failures).toBe(1);
    expect(await lastUsage()).toMatchObject({ status: 200, outcome: "ok", server: b.url });
    const metrics = await app.services.metrics.render();
    expect(metrics).toContain(
      `gateway_upstream_requests_total{outcome="error",server="${a.url}"} 1`,
    );
  });

  it("a JSON answer whose server dies after its headers is answered by the other server", async () => {
    const { a, b, post, lastUsage } = await setup();
    a.failure = "after-headers";
    const res = await post(chat("hi"));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe("Hello world");
    expect(calls(a)).toBe(1);
    expect(calls(b)).toBe(1);
    expect(await lastUsage()).toMatchObject({ status: 200, server: b.url });
  });

  it("GET /api/models and /v1/models move to the other server too", async () => {
    const { a, b, s, app } = await setup();
    a.failure = "after-headers";
    const res = await app.inject({ method: "GET", url: "/api/models", headers: bearer(s.token) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ models: [{ id: "fake-model", kind: "base" }] });
    const v1 = await app.inject({ method: "GET", url: "/v1/models", headers: bearer(s.token) });
    expect(v1.statusCode).toBe(200);
    expect(calls(a, "/v1/models")).toBe(2);
    expect(calls(b, "/v1/models")).toBe(2);
  });

  it("a chat turn whose server dies after its headers is answered by the other server", async () => {
    const { a, b, s, app } = await setup();
    a.failure = "after-headers";
    const created = await app.inject({
      method: "POST",
      url: "/api/conversations",
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: {},
    });
    const id = created.json().id as string;
    const res = await app.inject({
      method: "POST",
      url: `/api/conversations/${id}/messages`,
      headers: { ...bearer(s.token), ...JSON_CT },
      payload: { content: "hi" },
    });
    expect(res.statusCode).toBe(200);
    const events = res.body.split("\n\n").map((e) => e.split("\n")[0]);
    expect(events).toContain("event: done");
    expect(events).not.toContain("event: error");
    expect(res.body).toContain('"content":"Hello world"');
    expect(calls(a)).toBe(1);
    expect(calls(b)).toBe(1);
  });

  it("never retries once a chunk was relayed: in-band error, the other server gets nothing", async () => {
    const { a, b, post, lastUsage } = await setup();
    const res = await post(chat("CRASH", { stream: true }));
    expect(res.status).toBe(200);
    const events = dataEvents(await res.text());
    expect(JSON.parse(events[0] ?? "{}").choices[0].delta.content).toBe("Hel");
    expect(JSON.parse(events.at(-1) ?? "{}").error).toMatchObject({ code: "upstream_error" });
    expect(events).not.toContain("[DONE]");
    expect(calls(a)).toBe(1);
    expect(calls(b)).toBe(0);
    expect(await lastUsage()).toMatchObject({ status: 502, outcome: "error", server: a.url });
  });

  it("when every server breaks before the first byte the client gets a plain JSON 502", async () => {
    const { a, b, post, lastUsage } = await setup();
    a.failure = "after-headers";
    b.failure = "after-headers";
    const res = await post(chat("hi", { stream: true }));
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toMatchObject({ error: { type: "server_error" } });
    expect(calls(a) + calls(b)).toBe(2);
    expect(await lastUsage()).toMatchObject({ status: 502, outcome: "error" });
  });
});

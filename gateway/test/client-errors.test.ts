import { afterEach, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../src/json-body.js";
import { Balancer } from "../src/services/balancer.js";
import { LlmClient } from "../src/services/llm-client.js";
import { FAKE_TOKEN, startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp } from "./helpers.js";
import { type Cleanup, runCleanup, twoServers } from "./two-servers.js";

const calls = (f: { requests: { path: string }[] }) =>
  f.requests.filter((r) => r.path.startsWith("/v1/")).length;

/**
 * A client's mistake is answered 400 and never counts against the server it would have
 * gone to: three bad requests must not eject an llm-server, and a 4xx is never retried on
 * another server.
 */
describe("client errors never eject a server", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  async function setup() {
    const { a, b, app } = await twoServers(cleanup);
    const s = await signUp(app, "client-errors@example.org");
    const post = (payload: string, url = "/v1/chat/completions") =>
      app.inject({ method: "POST", url, headers: { ...bearer(s.token), ...JSON_CT }, payload });
    const server = (u: string) =>
      app.services.balancer.snapshot().servers.find((x) => x.url === u) as {
        state: string;
        failures: number;
        consecutiveFailures: number;
      };
    return { a, b, app, post, server };
  }

  it("a body nested 5,000 deep is a 400 at the edge, three times, and no server fails", async () => {
    const { a, b, post, server } = await setup();
    const deep = `${"[".repeat(5000)}${"]".repeat(5000)}`;
    const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"x":${deep}}`;
    for (const url of ["/v1/chat/completions", "/api/llm/chat", "/api/analyze"]) {
      const res = await post(body, url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.message).toContain(`more than ${MAX_JSON_DEPTH} levels`);
    }
    expect(calls(a) + calls(b)).toBe(0);
    expect(server(a.url)).toMatchObject({ state: "healthy", failures: 0 });
    expect(server(b.url)).toMatchObject({ state: "healthy", failures: 0 });
    // Exactly at the bound still passes (brackets inside strings do not count).
    const ok = `${"[".repeat(MAX_JSON_DEPTH - 1)}"[[[[{{{{"${"]".repeat(MAX_JSON_DEPTH - 1)}`;
    const res = await post(`{"model":"m","messages":[{"role":"user","content":"hi"}],"x":${ok}}`);
    expect(res.statusCode).toBe(200);
  });

  it("llm-server's 4xx goes to the client, is not retried elsewhere, and ejects nothing", async () => {
    const { a, b, post, server } = await setup();
    for (let i = 0; i < 4; i++) {
      for (const stream of [false, true]) {
        const res = await post(JSON.stringify(chat("ERROR400", { stream })));
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ message: "prompt too long" });
      }
    }
    expect(calls(a)).toBe(8);
    expect(calls(b)).toBe(0);
    expect(server(a.url)).toMatchObject({ state: "healthy", failures: 0, consecutiveFailures: 0 });
    // The server is still in: the next good request goes to it.
    expect((await post(JSON.stringify(chat("hi")))).statusCode).toBe(200);
    expect(calls(a)).toBe(9);
  });

  it("a body the gateway cannot serialize is a 400, charged to no server", async () => {
    const a = await startFakeLlm();
    cleanup.push(() => a.close());
    const balancer = new Balancer([a.url], {
      healthIntervalMs: 60_000,
      ejectAfterFailures: 1,
      readmitAfterChecks: 1,
      maxOutstanding: 0,
      queueMax: 10,
      queueTimeoutMs: 1000,
    });
    const llm = new LlmClient({
      balancer,
      token: FAKE_TOKEN,
      firstTokenTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      headersTimeoutMs: 5000,
    });
    const cyclic: Record<string, unknown> = { model: "m" };
    cyclic.self = cyclic;
    const call = {
      method: "POST" as const,
      path: "/v1/chat/completions",
      body: cyclic,
      clientId: "u",
      requestId: "r",
      signal: new AbortController().signal,
    };
    await expect(llm.send(call)).rejects.toMatchObject({ statusCode: 400, code: "INVALID_BODY" });
    expect(balancer.snapshot().servers[0]).toMatchObject({ requests: 0, failures: 0 });
    expect(calls(a)).toBe(0);
  });
});

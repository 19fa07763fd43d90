import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp, testConfig } from "./helpers.js";
import {
  type Cleanup,
  dataEvents,
  lastUsage as lastRow,
  preferFirst,
  runCleanup,
} from "./two-servers.js";

const root = resolve(import.meta.dirname, "..");
const tsxLoader = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** A real TCP server that accepts every connection and never answers a byte. */
async function silentServer(cleanup: Cleanup): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((done) => server.close(done));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return `http://127.0.0.1:${address.port}`;
}

/** The fake llm-server in its own process (to be stopped with SIGSTOP); its URL. */
async function fakeProcess(cleanup: Cleanup): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", tsxLoader, join(root, "test", "fake-llm-process.ts")],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  cleanup.push(async () => {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  });
  const url = await new Promise<string>((done, fail) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const line = /^(http:\/\/\S+)\n/.exec(out);
      if (line?.[1]) done(line[1]);
    });
    child.once("exit", (code) => fail(new Error(`fake llm-server exited (${code})`)));
  });
  return { child, url };
}

/**
 * A server that accepts connections but never answers (a stopped process) must not hold
 * requests while another is free: no response headers within LLM_HEADERS_TIMEOUT_MS moves
 * the call to the next server; with none left the client gets a 504 that says so; a client
 * that gives up meanwhile is recorded as 499.
 */
describe("stalled llm-servers", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  async function gateway(urls: string[], headersTimeoutMs: number, more: Partial<Config> = {}) {
    const app = await buildApp(testConfig({ llmServerUrls: urls, headersTimeoutMs, ...more }));
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    cleanup.push(() => app.close());
    const s = await signUp(app, "stalled@example.org");
    const post = (body: unknown, signal?: AbortSignal) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { ...bearer(s.token), ...JSON_CT },
        body: JSON.stringify(body),
        ...(signal ? { signal } : {}),
      });
    const lastUsage = () => lastRow(app, s.userId);
    return { app, post, lastUsage, url, token: s.token };
  }

  it("a SIGSTOP'd server's stream moves to the free server before its first byte", async () => {
    const frozen = await fakeProcess(cleanup);
    const b = await startFakeLlm();
    cleanup.push(() => b.close());
    const { app, post, lastUsage } = await gateway([frozen.url, b.url], 500);
    // b reports load, so the (still running) process is preferred.
    await preferFirst(app, b);
    expect((await post(chat("hi"))).status).toBe(200);
    expect((await lastUsage())?.server).toBe(frozen.url);

    frozen.child.kill("SIGSTOP");
    const t0 = Date.now();
    const res = await post(chat("hi", { stream: true }));
    expect(res.status).toBe(200);
    const events = dataEvents(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.some((e) => e.includes('"error"'))).toBe(false);
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(await lastUsage()).toMatchObject({ status: 200, outcome: "ok", server: b.url });
    const snap = app.services.balancer.snapshot().servers.find((x) => x.url === frozen.url);
    expect(snap?.failures).toBe(1);
    expect(await app.services.metrics.render()).toContain(
      `gateway_upstream_requests_total{outcome="stalled",server="${frozen.url}"} 1`,
    );
  });

  it("a JSON completion held by a SIGSTOP'd server moves to the free one once its health checks go unanswered, billed once", async () => {
    const frozen = await fakeProcess(cleanup);
    const b = await startFakeLlm();
    cleanup.push(() => b.close());
    // The first-token timeout (which bounds a JSON answer) is far away: only the health
    // check can tell that the server froze.
    const balancer = { ...testConfig().balancer, healthIntervalMs: 500 };
    const { app, post, lastUsage } = await gateway([frozen.url, b.url], 500, {
      firstTokenTimeoutMs: 60_000,
      balancer,
    });
    await preferFirst(app, b);
    expect((await post(chat("hi"))).status).toBe(200);
    expect((await lastUsage())?.server).toBe(frozen.url);

    frozen.child.kill("SIGSTOP");
    const t0 = Date.now();
    const res = await post(chat("hi"));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe("Hello world");
    // About one health interval plus the probe's 1 s timeout; far below 60 s.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await app.db.drain();
    const rows = await app.db.kysely
      .selectFrom("usage_record")
      .select(["server", "status", "quotaTokens"])
      .orderBy("id")
      .execute();
    expect(rows).toEqual([
      { server: frozen.url, status: 200, quotaTokens: 8 },
      { server: b.url, status: 200, quotaTokens: 8 },
    ]);
    const b2 = b.requests.filter((r) => r.path === "/v1/chat/completions");
    expect(b2).toHaveLength(1);
    expect(await app.services.metrics.render()).toContain(
      `gateway_upstream_requests_total{outcome="stalled",server="${frozen.url}"} 1`,
    );
  }, 30_000);

  it("a JSON completion on a server that answers its checks with 503 (draining) is not moved", async () => {
    const a = await startFakeLlm();
    const b = await startFakeLlm();
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const balancer = { ...testConfig().balancer, healthIntervalMs: 200 };
    const { app, post } = await gateway([a.url, b.url], 500, { balancer });
    await preferFirst(app, b);
    const pending = post(chat("WAIT for the drain"));
    for (let i = 0; i < 100 && !a.requests.some((r) => r.path === "/v1/chat/completions"); i++)
      await new Promise((r) => setTimeout(r, 10));
    a.health = { status: 503, body: { status: "draining" } };
    await new Promise((r) => setTimeout(r, 1_000));
    a.releaseHeld();
    expect((await pending).status).toBe(200);
    expect(b.requests.filter((r) => r.path === "/v1/chat/completions")).toHaveLength(0);
  });

  it("with every server silent the client gets a 504 that says so, not a generic error", async () => {
    const { app, post, lastUsage } = await gateway(
      [await silentServer(cleanup), await silentServer(cleanup)],
      300,
    );
    const message = "No model server answered in time: each sent no response headers within 0.3 s";
    const res = await post(chat("hi", { stream: true }));
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({
      code: "upstream_timeout",
      type: "server_error",
      message,
    });
    expect(await lastUsage()).toMatchObject({ status: 504, errorCode: "UPSTREAM_TIMEOUT" });
    const s = await signUp(app, "models@example.org");
    const models = await app.inject({
      method: "GET",
      url: "/api/models",
      headers: bearer(s.token),
    });
    expect(models.statusCode).toBe(504);
    expect(models.json().error).toMatchObject({ code: "UPSTREAM_TIMEOUT", message });
  });

  /** Sends a call, gives up after 300 ms, and returns the usage row it left. */
  async function giveUp(
    send: (signal: AbortSignal) => Promise<Response>,
    lastUsage: () => Promise<Record<string, unknown> | undefined>,
  ) {
    const controller = new AbortController();
    const pending = send(controller.signal).catch(() => "aborted");
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    expect(await pending).toBe("aborted");
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !row; i++) {
      await new Promise((r) => setTimeout(r, 20));
      row = await lastUsage();
    }
    return row;
  }

  it("a client that gives up while the server is silent is recorded as 499, not 502", async () => {
    const { post, lastUsage } = await gateway([await silentServer(cleanup)], 10_000);
    const row = await giveUp((signal) => post(chat("hi", { stream: true }), signal), lastUsage);
    expect(row).toMatchObject({ status: 499, outcome: "cancelled", errorCode: null });
  });

  it.each([
    ["a JSON completion", "/v1/chat/completions"],
    ["a model list", "/v1/models"],
    ["an analyze call", "/api/analyze"],
  ])(
    "%s whose client gives up is recorded as 499 too (one outcome for every LLM route)",
    async (_what, path) => {
      const { url, token, lastUsage } = await gateway([await silentServer(cleanup)], 10_000);
      const body =
        path === "/v1/models"
          ? undefined
          : JSON.stringify(path === "/api/analyze" ? { text: "hi" } : chat("hi"));
      const send = (signal: AbortSignal) =>
        fetch(`${url}${path}`, {
          method: body === undefined ? "GET" : "POST",
          headers: { ...bearer(token), ...(body === undefined ? {} : JSON_CT) },
          ...(body === undefined ? {} : { body }),
          signal,
        });
      const row = await giveUp(send, lastUsage);
      expect(row).toMatchObject({
        route: path,
        status: 499,
        outcome: "cancelled",
        errorCode: null,
      });
    },
  );
});

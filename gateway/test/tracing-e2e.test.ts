import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./helpers.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./otlp-receiver.js";

/**
 * Real processes: a gateway (src/server.ts) and a real llm-server (the embedded model), each
 * exporting OTLP to a receiver in this test; the llm-server's spans of a request carry the
 * gateway's trace id and hang under the gateway's upstream span.
 */
const ROOT = resolve(import.meta.dirname, "..");
const LLM_SERVER_DIR = resolve(ROOT, "../llm-server");
const PYTHON = resolve(LLM_SERVER_DIR, ".venv/bin/python");
const TSX_LOADER = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
const available = existsSync(PYTHON);
if (!available) {
  if (process.env.CI === "true") throw new Error(`${PYTHON} is missing: run \`make setup\``);
  console.warn(`\n*** SKIPPED test/tracing-e2e.test.ts: ${PYTHON} is missing (make setup) ***\n`);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A child process whose last output is kept for error messages. */
function start(command: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, output: () => output };
}

async function waitFor(url: string, proc: { child: ChildProcess; output: () => string }) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.child.exitCode !== null) {
      throw new Error(`${url}: exited (${proc.child.exitCode}):\n${proc.output()}`);
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after 90 s:\n${proc.output()}`);
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

describe.skipIf(!available)("one trace across a real gateway and a real llm-server", () => {
  const token = randomBytes(30).toString("base64url");
  let receiver: OtlpReceiver;
  let llm: ReturnType<typeof start> | undefined;
  let gateway: ReturnType<typeof start> | undefined;
  let base: string;
  let bearer: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    };
    const llmPort = await freePort();
    const llmUrl = `http://127.0.0.1:${llmPort}`;
    llm = start(PYTHON, ["-m", "llm_server"], LLM_SERVER_DIR, {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      APP_ENV: "production",
      LLM_SERVER_TOKEN: token,
      LLM_SERVER_HOST: "127.0.0.1",
      LLM_SERVER_PORT: String(llmPort),
      LLM_N_THREADS: "2",
      ...otel,
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    gateway = start(
      process.execPath,
      ["--import", TSX_LOADER, join(ROOT, "src", "server.ts")],
      mkdtempSync(join(tmpdir(), "gateway-trace-")),
      {
        PATH: process.env.PATH ?? "",
        APP_ENV: "development",
        GATEWAY_HOST: "127.0.0.1",
        GATEWAY_PORT: String(port),
        LOG_LEVEL: "warn",
        LLM_SERVER_URLS: llmUrl,
        LLM_SERVER_TOKEN: token,
        ...otel,
      },
    );
    await waitFor(`${llmUrl}/health/ready`, llm);
    await waitFor(`${base}/health/ready`, gateway);
    const signUp = await fetch(`${base}/api/auth/sign-up/email`, {
      method: "POST",
      headers: { origin: "http://localhost:3000", "content-type": "application/json" },
      body: JSON.stringify({
        email: "trace@example.org",
        password: "correct-horse-battery",
        name: "T",
      }),
    });
    expect(signUp.status).toBe(200);
    bearer = String(signUp.headers.get("set-auth-token"));
  }, 150_000);

  afterAll(async () => {
    await Promise.all([stop(gateway?.child), stop(llm?.child)]);
    await receiver?.close();
  }, 40_000);

  /** Waits until the receiver holds spans of `traceId` matching `done`. */
  async function trace(traceId: string, done: (spans: ReceivedSpan[]) => boolean) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      if (done(spans)) return spans;
      if (Date.now() > deadline) {
        throw new Error(`trace ${traceId} incomplete: ${JSON.stringify(spans, null, 1)}`);
      }
      await sleep(100);
    }
  }

  async function complete(headers: Record<string, string>, stream: boolean) {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${bearer}`,
        "content-type": "application/json",
        ...headers,
      },
      body: JSON.stringify({
        model: "default",
        messages: [{ role: "user", content: "Say hello." }],
        max_tokens: 4,
        stream,
      }),
    });
    expect(res.status).toBe(200);
    await res.text();
  }

  const gatewayDone = (spans: ReceivedSpan[]) =>
    spans.some((s) => s.service === "gateway" && s.name === "POST /v1/chat/completions") &&
    spans.some((s) => s.service === "llm-server" && s.name === "decode");

  it("a client's traceparent: gateway and llm-server spans in its trace, llm-server under the gateway's attempt", async () => {
    const traceId = randomBytes(16).toString("hex");
    const clientSpan = randomBytes(8).toString("hex");
    await complete({ traceparent: `00-${traceId}-${clientSpan}-01` }, true);
    const spans = await trace(traceId, gatewayDone);
    const gw = spans.filter((s) => s.service === "gateway");
    const server = gw.find((s) => s.parentSpanId === clientSpan);
    expect(server?.name).toBe("POST /v1/chat/completions");
    const attempt = gw.find((s) => s.parentSpanId === server?.spanId && s.name.startsWith("POST"));
    expect(attempt).toBeDefined();
    const llmServer = spans.find(
      (s) => s.service === "llm-server" && s.parentSpanId === attempt?.spanId,
    );
    expect(llmServer?.name).toBe("POST /v1/chat/completions");
    const phases = spans
      .filter((s) => s.service === "llm-server" && s.parentSpanId === llmServer?.spanId)
      .map((s) => s.name)
      .sort();
    expect(phases).toEqual(["decode", "prefill", "queue"]);
    expect(receiver.contentTypes).toEqual(new Set(["application/json", "application/x-protobuf"]));
  }, 60_000);

  it("no traceparent: the llm-server records the trace id the gateway started", async () => {
    const before = new Set(receiver.spans.map((s) => s.traceId));
    await complete({}, false);
    let traceId = "";
    const deadline = Date.now() + 20_000;
    while (!traceId) {
      const root = receiver.spans.find(
        (s) =>
          s.service === "gateway" &&
          s.name === "POST /v1/chat/completions" &&
          s.parentSpanId === "" &&
          !before.has(s.traceId),
      );
      traceId = root?.traceId ?? "";
      if (Date.now() > deadline) throw new Error("the gateway exported no root span");
      if (!traceId) await sleep(100);
    }
    const spans = await trace(traceId, gatewayDone);
    expect(spans.filter((s) => s.service === "llm-server").length).toBeGreaterThanOrEqual(3);
  }, 60_000);
});

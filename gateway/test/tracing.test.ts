import { SpanKind } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace";
import { afterEach, describe, expect, it, vi } from "vitest";
import { buildApp } from "../src/app.js";
import type { Config } from "../src/config.js";
import { Tracing, tracingSettings } from "../src/services/tracing.js";
import { startFakeLlm } from "./fake-llm.js";
import { bearer, chat, JSON_CT, signUp, testConfig } from "./helpers.js";
import { type Cleanup, dataEvents, preferFirst, runCleanup } from "./two-servers.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
const CLIENT_TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;

/** Trace id and parent span id of a traceparent header. */
function parse(header: unknown): { traceId: string; parentId: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(header));
  if (!match) throw new Error(`not a traceparent: ${String(header)}`);
  return { traceId: match[1] as string, parentId: match[2] as string };
}

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/**
 * Two fake llm-servers (a preferred) behind a gateway whose spans go to an in-memory exporter.
 * The tracing options default to "recording"; `env` sets OTEL_* variables instead.
 */
async function traced(
  cleanup: Cleanup,
  options: { env?: Record<string, string>; config?: Partial<Config> } = {},
) {
  const a = await startFakeLlm();
  const b = await startFakeLlm();
  cleanup.push(
    () => a.close(),
    () => b.close(),
  );
  const exporter = new InMemorySpanExporter();
  const tracing = new Tracing(
    options.env
      ? { env: options.env }
      : { env: {}, spanProcessor: new SimpleSpanProcessor({ exporter }) },
  );
  const config = testConfig({ llmServerUrls: [a.url, b.url], ...options.config });
  const app = await buildApp(config, { tracing });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  cleanup.push(() => app.close());
  await preferFirst(app, b);
  const s = await signUp(app, "trace@example.org");
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(s.token), ...JSON_CT, ...headers },
      body: JSON.stringify(body),
    });
  /** The finished spans of the request whose server span has this trace id. */
  const spansOf = (traceId: string) =>
    exporter.getFinishedSpans().filter((x) => x.spanContext().traceId === traceId);
  return { a, b, app, s, post, exporter, spansOf };
}

/** Waits until the exporter holds the request's server span (ended when the socket closes). */
async function serverSpan(spans: () => ReadableSpan[], route: string): Promise<ReadableSpan> {
  for (let i = 0; i < 100; i++) {
    const found = spans().find((x) => x.name === `POST ${route}` && x.kind === SpanKind.SERVER);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no server span for ${route}`);
}

describe("tracing across gateway and llm-server", () => {
  const cleanup: Cleanup = [];
  afterEach(() => runCleanup(cleanup));

  it("continues the client's traceparent: request, cache, admission and every upstream attempt share its trace", async () => {
    const { a, b, post, spansOf } = await traced(cleanup);
    a.failure = "after-headers"; // the first attempt breaks: the call moves to b
    const res = await post(chat("a secret prompt", { temperature: 0, stream: true }), {
      traceparent: CLIENT_TRACEPARENT,
    });
    expect(res.status).toBe(200);
    expect(dataEvents(await res.text()).at(-1)).toBe("[DONE]");

    const server = await serverSpan(() => spansOf(TRACE_ID), "/v1/chat/completions");
    expect(parentOf(server)).toBe(CLIENT_SPAN);
    expect(server.attributes).toMatchObject({
      "http.route": "/v1/chat/completions",
      "http.response.status_code": 200,
    });
    const spans = spansOf(TRACE_ID);
    const byName = (name: string) => spans.filter((x) => x.name === name);
    expect(byName("cache lookup")).toHaveLength(1);
    expect(byName("cache lookup")[0]?.attributes["cache.hit"]).toBe(false);
    expect(byName("limit admission")).toHaveLength(1);
    const attempts = byName("POST /v1/chat/completions").filter((x) => x.kind === SpanKind.CLIENT);
    expect(attempts).toHaveLength(2);
    for (const span of [...attempts, ...byName("cache lookup"), ...byName("limit admission")]) {
      expect(parentOf(span)).toBe(server.spanContext().spanId);
    }
    // Each llm-server got a traceparent naming its own attempt's span, in the client's trace.
    const sent = [a, b].map((f) => {
      const call = f.requests.find((r) => r.path === "/v1/chat/completions");
      return parse(call?.headers.traceparent);
    });
    expect(sent.map((x) => x.traceId)).toEqual([TRACE_ID, TRACE_ID]);
    expect(new Set(sent.map((x) => x.parentId))).toEqual(
      new Set(attempts.map((x) => x.spanContext().spanId)),
    );
    const failed = attempts.find(
      (x) => x.attributes["url.full"] === `${a.url}/v1/chat/completions`,
    );
    expect(failed?.attributes["error.type"]).toBeDefined();
  });

  it("starts a trace when none came; no prompt, key or token in any span", async () => {
    const { a, s, post, exporter } = await traced(cleanup);
    const res = await post(chat("a secret prompt"));
    expect(res.status).toBe(200);
    await res.text();
    const sent = parse(
      a.requests.find((r) => r.path === "/v1/chat/completions")?.headers.traceparent,
    );
    const spans = exporter
      .getFinishedSpans()
      .filter((x) => x.spanContext().traceId === sent.traceId);
    await serverSpan(() => exporter.getFinishedSpans(), "/v1/chat/completions");
    expect(spans.length).toBeGreaterThanOrEqual(3);
    const text = JSON.stringify(exporter.getFinishedSpans().map((x) => [x.attributes, x.events]));
    expect(text).not.toContain("secret prompt");
    expect(text).not.toContain(s.token);
    expect(text).not.toContain("test-llm-server-token");
  });

  it("a cache hit is a cache lookup span with cache.hit true, and no upstream call", async () => {
    const { a, post, spansOf } = await traced(cleanup);
    const body = chat("same", { temperature: 0 });
    await (await post(body)).text();
    const calls = a.requests.length;
    const res = await post(body, { traceparent: CLIENT_TRACEPARENT });
    expect(res.headers.get("x-cache")).toBe("HIT");
    await res.text();
    await serverSpan(() => spansOf(TRACE_ID), "/v1/chat/completions");
    const spans = spansOf(TRACE_ID);
    expect(spans.find((x) => x.name === "cache lookup")?.attributes["cache.hit"]).toBe(true);
    expect(spans.filter((x) => x.name === "POST /v1/chat/completions")).toHaveLength(1);
    expect(a.requests.length).toBe(calls);
  });

  it("a request refused by a limit: its admission span carries the refusal's code", async () => {
    const perMinute = { requestsPerMinute: 1, tokensPerDay: 0, concurrentStreams: 0, maxTokens: 0 };
    const { post, spansOf } = await traced(cleanup, {
      config: { limits: { user: perMinute, admin: perMinute } },
    });
    await (await post(chat("one"))).text();
    const res = await post(chat("two"), { traceparent: CLIENT_TRACEPARENT });
    expect(res.status).toBe(429);
    const code = ((await res.json()) as { error: { code: string } }).error.code;
    const server = await serverSpan(() => spansOf(TRACE_ID), "/v1/chat/completions");
    expect(server.attributes["http.response.status_code"]).toBe(429);
    const admission = spansOf(TRACE_ID).find((x) => x.name === "limit admission");
    expect(String(admission?.attributes["error.type"]).toLowerCase()).toBe(code.toLowerCase());
    expect(spansOf(TRACE_ID).some((x) => x.kind === SpanKind.CLIENT)).toBe(false);
  });

  it("exporter off: no span is recorded, the client's traceparent still reaches llm-server", async () => {
    const { a, post, exporter } = await traced(cleanup, { env: {} });
    const res = await post(chat("hi"), { traceparent: CLIENT_TRACEPARENT });
    expect(res.status).toBe(200);
    await res.text();
    const call = a.requests.find((r) => r.path === "/v1/chat/completions");
    expect(call?.headers.traceparent).toBe(CLIENT_TRACEPARENT);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    // And without one, nothing is invented.
    await (await post(chat("hi again"))).text();
    expect(a.requests.at(-1)?.headers.traceparent).toBeUndefined();
  });
});

describe("tracing settings (OTEL_*)", () => {
  it("builds no exporter unless OTEL_EXPORTER_OTLP_ENDPOINT is set", () => {
    const exporter = vi.fn(() => new InMemorySpanExporter());
    const off = new Tracing({ env: {}, exporter });
    expect(off.recording).toBe(false);
    expect(exporter).not.toHaveBeenCalled();
    const disabled = new Tracing({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" },
      exporter,
    });
    expect(disabled.recording).toBe(false);
    const none = new Tracing({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" },
      exporter,
    });
    expect(none.recording).toBe(false);
    expect(exporter).not.toHaveBeenCalled();
    const on = new Tracing({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" },
      exporter,
    });
    expect(on.recording).toBe(true);
    expect(exporter).toHaveBeenCalledTimes(1);
  });

  it("honours OTEL_TRACES_SAMPLER and warns about values it cannot use", () => {
    expect(tracingSettings({ OTEL_TRACES_SAMPLER: "always_off" }).sampler.toString()).toBe(
      "AlwaysOffSampler",
    );
    const bad = tracingSettings({
      OTEL_TRACES_SAMPLER: "traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "2",
      OTEL_BSP_SCHEDULE_DELAY: "-5",
    });
    expect(bad.warnings).toEqual([
      "OTEL_BSP_SCHEDULE_DELAY=-5 is not a positive integer; using the default",
      "OTEL_TRACES_SAMPLER_ARG=2 is not a ratio from 0 to 1; using 1",
    ]);
    expect(tracingSettings({ OTEL_TRACES_SAMPLER: "nope" }).warnings[0]).toContain("nope");
  });
});

import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { describe, expect, it, vi } from "vitest";
import { proxyToGateway } from "./proxy";
import { createTracing, routeOf } from "./tracing";

const GW = "http://127.0.0.1:4000";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const BROWSER_SPAN = "00f067aa0ba902b7";

function recording() {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({}, { processor: new SimpleSpanProcessor({ exporter }) });
  return { exporter, tracing };
}

/** The traceparent the (mocked) gateway received. */
function sentTraceparent(fetchMock: ReturnType<typeof vi.fn<typeof fetch>>): string | null {
  const [, init] = fetchMock.mock.calls[0] ?? [];
  return new Headers(init?.headers).get("traceparent");
}

const gateway = () =>
  vi.fn<typeof fetch>(async () => new Response("data: 1\n\ndata: [DONE]\n\n", { status: 200 }));

describe("tracing of the web's calls to the gateway", () => {
  it("continues the browser's trace: the gateway gets a traceparent naming the web's span", async () => {
    const { exporter, tracing } = recording();
    const fetchMock = gateway();
    const req = new Request("http://web:3000/api/conversations/Ab12cd34/messages", {
      method: "POST",
      headers: { traceparent: `00-${TRACE_ID}-${BROWSER_SPAN}-01`, cookie: "s=secret" },
      body: "{}",
    });
    const res = await proxyToGateway(req, { base: GW, fetch: fetchMock, tracing });
    expect(exporter.getFinishedSpans()).toHaveLength(0); // the stream is still open
    expect(await res.text()).toContain("[DONE]");
    const [span] = exporter.getFinishedSpans();
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.name).toBe("POST /api/conversations/*/messages");
    expect(span?.spanContext().traceId).toBe(TRACE_ID);
    expect(span?.parentSpanContext?.spanId).toBe(BROWSER_SPAN);
    expect(span?.attributes["http.response.status_code"]).toBe(200);
    expect(span?.resource.attributes["service.name"]).toBe("web");
    expect(sentTraceparent(fetchMock)).toBe(`00-${TRACE_ID}-${span?.spanContext().spanId}-01`);
    expect(JSON.stringify(span?.attributes)).not.toContain("secret");
  });

  it("starts a trace when the browser sent none; an unreachable gateway ends the span failed", async () => {
    const { exporter, tracing } = recording();
    const fetchMock = vi.fn<typeof fetch>(async () => {
      throw new TypeError("fetch failed");
    });
    const res = await proxyToGateway(new Request("http://web:3000/v1/models"), {
      base: GW,
      fetch: fetchMock,
      tracing,
    });
    expect(res.status).toBe(502);
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.status.code).toBe(2); // ERROR
    expect(sentTraceparent(fetchMock)).toMatch(
      new RegExp(`^00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01$`),
    );
  });

  it("off without OTEL_EXPORTER_OTLP_ENDPOINT: no exporter, the browser's header passes as it came", async () => {
    const exporter = vi.fn(() => new InMemorySpanExporter());
    const off = createTracing({}, { exporter });
    expect(off.tracer).toBeNull();
    expect(exporter).not.toHaveBeenCalled();
    expect(
      createTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, { exporter }).tracer,
    ).not.toBeNull();
    expect(exporter).toHaveBeenCalledTimes(1);

    const header = `00-${TRACE_ID}-${BROWSER_SPAN}-01`;
    const fetchMock = gateway();
    const req = new Request("http://web:3000/v1/models", { headers: { traceparent: header } });
    await proxyToGateway(req, { base: GW, fetch: fetchMock, tracing: off });
    expect(sentTraceparent(fetchMock)).toBe(header);
    const none = gateway();
    await proxyToGateway(new Request("http://web:3000/v1/models"), {
      base: GW,
      fetch: none,
      tracing: off,
    });
    expect(sentTraceparent(none)).toBeNull();
  });

  it("names spans without ids or tokens from the path", () => {
    expect(routeOf("/api/auth/reset-password/aB3xYz9QrStUvWxYz012345?callbackURL=/x")).toBe(
      "/api/auth/reset-password/*",
    );
    expect(routeOf("/v1/chat/completions")).toBe("/v1/chat/completions");
    expect(routeOf("/")).toBe("/");
  });
});

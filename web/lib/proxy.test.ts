import { describe, expect, it, vi } from "vitest";
import { forwardResponseHeaders, proxyToGateway, upstreamUrl } from "./proxy";

const GW = "http://127.0.0.1:4000";

describe("upstreamUrl", () => {
  it("keeps path and query", () => {
    expect(upstreamUrl(GW, "http://web:3000/v1/models?x=1")).toBe(`${GW}/v1/models?x=1`);
    expect(upstreamUrl(GW, "http://web:3000/docs")).toBe(`${GW}/docs`);
  });
});

describe("forwardResponseHeaders", () => {
  it("drops hop-by-hop and encoding headers, marks SSE unbuffered", () => {
    const h = forwardResponseHeaders(
      new Headers({
        "content-type": "text/event-stream",
        "content-encoding": "gzip",
        "content-length": "10",
        connection: "keep-alive",
        "x-request-id": "abc",
      }),
    );
    expect(h.get("content-encoding")).toBeNull();
    expect(h.get("content-length")).toBeNull();
    expect(h.get("connection")).toBeNull();
    expect(h.get("x-request-id")).toBe("abc");
    expect(h.get("x-accel-buffering")).toBe("no");
  });
});

describe("proxyToGateway", () => {
  it("forwards method, path, headers and body, and returns the upstream answer", async () => {
    const fetchMock = vi.fn<typeof fetch>(
      async () => new Response('{"ok":true}', { status: 201, headers: { "x-up": "1" } }),
    );
    const req = new Request("http://web:3000/v1/chat/completions?stream=true", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t", host: "web:3000" },
      body: '{"a":1}',
    });
    const res = await proxyToGateway(req, { base: GW, fetch: fetchMock });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-up")).toBe("1");
    expect(await res.text()).toBe('{"ok":true}');

    const [url, init] = fetchMock.mock.calls[0] ?? [];
    expect(url).toBe(`${GW}/v1/chat/completions?stream=true`);
    expect(init?.method).toBe("POST");
    const headers = new Headers(init?.headers);
    expect(headers.get("authorization")).toBe("Bearer t");
    expect(headers.get("host")).toBeNull();
    expect(headers.get("x-forwarded-host")).toBe("web:3000");
    expect(await new Response(init?.body).text()).toBe('{"a":1}');
  });

  it("answers 502 JSON when the gateway is unreachable", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () => {
      throw new TypeError("fetch failed");
    });
    const res = await proxyToGateway(new Request("http://web:3000/api/x"), {
      base: GW,
      fetch: fetchMock,
    });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      error: { type: "bad_gateway", message: "gateway unreachable: fetch failed" },
    });
  });
});

import { describe, expect, it, vi } from "vitest";
import { forwardResponseHeaders, MAX_BODY_BYTES, proxyToGateway, upstreamUrl } from "./proxy";

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
      error: {
        message: "gateway unreachable: fetch failed",
        type: "server_error",
        code: "BAD_GATEWAY",
      },
    });
  });
});

/** A body of `size` bytes that arrives in 64 KiB chunks with no length known up front. */
function chunked(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(65_536, size - sent);
      controller.enqueue(new Uint8Array(n).fill(97));
      sent += n;
    },
  });
}

/** A fetch that reads the whole request body the way undici sends it, then answers 200. */
const readingFetch = () =>
  vi.fn<typeof fetch>(async (_url, init) => {
    const text = await new Response(init?.body).text();
    return Response.json({ received: text.length });
  });

describe("proxyToGateway with a body over the gateway's 1 MiB limit", () => {
  it("answers 413 from Content-Length, in the gateway's envelope, without calling it", async () => {
    const fetchMock = readingFetch();
    const body = new Uint8Array(MAX_BODY_BYTES + 1);
    for (const [url, error] of [
      [
        "http://web:3000/api/conversations",
        { type: "invalid_request_error", code: "PAYLOAD_TOO_LARGE" },
      ],
      [
        "http://web:3000/v1/chat/completions",
        { type: "invalid_request_error", param: null, code: "payload_too_large" },
      ],
    ] as const) {
      const res = await proxyToGateway(
        new Request(url, {
          method: "POST",
          headers: { "content-length": String(body.byteLength) },
          body,
        }),
        { base: GW, fetch: fetchMock },
      );
      expect(res.status).toBe(413);
      const json = (await res.json()) as { error: Record<string, unknown> };
      expect(json.error).toMatchObject(error);
      expect(json.error.message).toMatch(/too large.*1048576 bytes/);
    }
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("answers 413 when a body without a length streams past the limit", async () => {
    const fetchMock = readingFetch();
    const req = new Request("http://web:3000/api/conversations", {
      method: "POST",
      body: chunked(MAX_BODY_BYTES + 100_000),
      duplex: "half",
    } as RequestInit);
    const res = await proxyToGateway(req, { base: GW, fetch: fetchMock });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "PAYLOAD_TOO_LARGE",
    );
  });

  it("reads the rest of an oversized body instead of cancelling it (the client gets its 413)", async () => {
    let cancelled = false;
    let closed = false;
    const source = chunked(MAX_BODY_BYTES * 2);
    const reader = source.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          closed = true;
          controller.close();
        } else controller.enqueue(value);
      },
      cancel() {
        cancelled = true;
      },
    });
    const req = new Request("http://web:3000/api/conversations", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    const res = await proxyToGateway(req, { base: GW, fetch: readingFetch() });
    expect(res.status).toBe(413);
    await vi.waitFor(() => expect(closed).toBe(true));
    expect(cancelled).toBe(false);
  });

  it("streams a body of exactly the limit through, byte for byte", async () => {
    const fetchMock = readingFetch();
    const req = new Request("http://web:3000/api/conversations", {
      method: "POST",
      body: chunked(MAX_BODY_BYTES),
      duplex: "half",
    } as RequestInit);
    const res = await proxyToGateway(req, { base: GW, fetch: fetchMock });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: MAX_BODY_BYTES });
  });

  it("passes the gateway's own answer through, whatever its status", async () => {
    for (const status of [400, 401, 413, 429, 503]) {
      const fetchMock = vi.fn<typeof fetch>(async () =>
        Response.json({ error: { code: "X" } }, { status }),
      );
      const res = await proxyToGateway(
        new Request("http://web:3000/api/conversations", { method: "POST", body: "{}" }),
        { base: GW, fetch: fetchMock },
      );
      expect(res.status).toBe(status);
    }
  });
});

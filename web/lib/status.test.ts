import { describe, expect, it, vi } from "vitest";
import { fetchStackStatus } from "./status";

const GW = "http://127.0.0.1:4000";

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

describe("fetchStackStatus", () => {
  it("reports reachable + ready when the gateway answers 200 ready", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () =>
      jsonResponse(200, { status: "ready", llmServers: [{ url: "http://x", ready: true }] }),
    );
    const status = await fetchStackStatus(GW, { fetch: fetchMock });
    expect(status).toEqual({ gateway: "reachable", model: "ready", detail: "HTTP 200" });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0]?.[0]).toBe(`${GW}/health/ready`);
  });

  it("reports reachable + not ready when the gateway answers 503 unavailable", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () =>
      jsonResponse(503, { status: "unavailable", llmServers: [{ url: "http://x", ready: false }] }),
    );
    const status = await fetchStackStatus(GW, { fetch: fetchMock });
    expect(status).toEqual({ gateway: "reachable", model: "not-ready", detail: "HTTP 503" });
  });

  it("reports reachable + not ready for a non-JSON or unexpected answer", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () => new Response("oops", { status: 500 }));
    const status = await fetchStackStatus(GW, { fetch: fetchMock });
    expect(status).toEqual({ gateway: "reachable", model: "not-ready", detail: "HTTP 500" });
  });

  it("reports not ready when no llm server is ready even if status says ready", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () =>
      jsonResponse(200, { status: "ready", llmServers: [{ url: "http://x", ready: false }] }),
    );
    const status = await fetchStackStatus(GW, { fetch: fetchMock });
    expect(status.model).toBe("not-ready");
  });

  it("reports unreachable when fetch rejects (connection refused)", async () => {
    const fetchMock = vi.fn<typeof fetch>(async () => {
      throw new TypeError("fetch failed");
    });
    const status = await fetchStackStatus(GW, { fetch: fetchMock });
    expect(status).toEqual({ gateway: "unreachable", model: "not-ready", detail: "fetch failed" });
  });

  it("reports unreachable on timeout", async () => {
    const fetchMock = vi.fn<typeof fetch>(
      (_input, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        }),
    );
    const status = await fetchStackStatus(GW, { fetch: fetchMock, timeoutMs: 20 });
    expect(status.gateway).toBe("unreachable");
    expect(status.detail).toBe("timed out after 20 ms");
  });
});

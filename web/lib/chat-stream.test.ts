import { afterEach, describe, expect, it, vi } from "vitest";
import { setUnauthorizedHandler } from "./api";
import { streamChat } from "./chat-stream";
import { ApiError } from "./http";

function sse(events: [string, unknown][], opts: { close?: boolean } = {}): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const [event, data] of events) {
        c.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      }
      if (opts.close !== false) c.close();
      else c.error(new TypeError("network error"));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

async function all(gen: AsyncGenerator<unknown>) {
  const out = [];
  for await (const x of gen) out.push(x);
  return out;
}

afterEach(() => {
  setUnauthorizedHandler(() => {});
});

describe("streamChat", () => {
  it("posts the body and yields start, deltas and done", async () => {
    const fetch = vi.fn(async () =>
      sse([
        [
          "start",
          { userMessage: { id: "u1", role: "user", content: "hi" }, assistantMessageId: "a1" },
        ],
        ["delta", { text: "Hel" }],
        ["delta", { text: "lo" }],
        [
          "done",
          {
            message: { id: "a1", content: "Hello" },
            usage: { promptTokens: 1, completionTokens: 2 },
            finishReason: "stop",
          },
        ],
      ]),
    );
    const evs = await all(streamChat("c 1", { content: "hi", maxTokens: 32 }, { fetch }));
    expect(fetch).toHaveBeenCalledWith(
      "/api/conversations/c%201/messages",
      expect.objectContaining({
        method: "POST",
        body: JSON.stringify({ content: "hi", maxTokens: 32 }),
      }),
    );
    expect(evs).toEqual([
      {
        type: "start",
        assistantMessageId: "a1",
        userMessage: { id: "u1", role: "user", content: "hi" },
      },
      { type: "delta", text: "Hel" },
      { type: "delta", text: "lo" },
      {
        type: "done",
        message: { id: "a1", content: "Hello" },
        usage: { promptTokens: 1, completionTokens: 2 },
        finishReason: "stop",
      },
    ]);
  });

  it("turns an HTTP 429 into an ApiError with the wait time", async () => {
    const fetch = vi.fn(async () =>
      Response.json(
        { error: { code: "QUOTA_EXCEEDED", message: "Daily token limit reached." } },
        { status: 429, headers: { "retry-after": "120" } },
      ),
    );
    const err = await all(streamChat("c", { content: "x" }, { fetch })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 429, code: "QUOTA_EXCEEDED", retryAfter: 120 });
  });

  it("calls the unauthorized handler on 401", async () => {
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    const fetch = vi.fn(async () =>
      Response.json({ error: { code: "UNAUTHORIZED", message: "no session" } }, { status: 401 }),
    );
    await expect(all(streamChat("c", { content: "x" }, { fetch }))).rejects.toMatchObject({
      status: 401,
    });
    expect(handler).toHaveBeenCalledOnce();
  });

  it("yields a server error event", async () => {
    const fetch = vi.fn(async () =>
      sse([["error", { error: { code: "UPSTREAM", message: "model crashed" } }]]),
    );
    expect(await all(streamChat("c", {}, { fetch }))).toEqual([
      { type: "error", error: { code: "UPSTREAM", message: "model crashed" } },
    ]);
  });

  it("reports a stream cut before done as a lost connection", async () => {
    const fetch = vi.fn(async () => sse([["delta", { text: "a" }]], { close: false }));
    await expect(all(streamChat("c", {}, { fetch }))).rejects.toMatchObject({
      code: "CONNECTION_LOST",
    });
    const fetch2 = vi.fn(async () => sse([["delta", { text: "a" }]]));
    await expect(all(streamChat("c", {}, { fetch: fetch2 }))).rejects.toMatchObject({
      code: "CONNECTION_LOST",
    });
  });

  it("maps a failed fetch to NETWORK_ERROR and rethrows aborts as is", async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(all(streamChat("c", {}, { fetch }))).rejects.toMatchObject({
      status: 0,
      code: "NETWORK_ERROR",
    });
    const controller = new AbortController();
    controller.abort();
    const aborting = vi.fn(async () => {
      throw new DOMException("aborted", "AbortError");
    });
    await expect(
      all(streamChat("c", {}, { fetch: aborting, signal: controller.signal })),
    ).rejects.toMatchObject({
      name: "AbortError",
    });
  });
});

import { describe, expect, it } from "vitest";
import { readSse, SseParser } from "./sse";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
}

async function collect(chunks: string[]) {
  const out = [];
  for await (const ev of readSse(streamOf(chunks))) out.push(ev);
  return out;
}

describe("readSse", () => {
  it("parses named events with JSON data", async () => {
    const evs = await collect([
      'event: start\ndata: {"assistantMessageId":"a1"}\n\n',
      'event: delta\ndata: {"text":"Hi"}\n\n',
    ]);
    expect(evs.map((e) => [e.event, JSON.parse(e.data)])).toEqual([
      ["start", { assistantMessageId: "a1" }],
      ["delta", { text: "Hi" }],
    ]);
  });

  it("joins events split across chunks, even inside a multi-byte character", async () => {
    const bytes = new TextEncoder().encode('event: delta\ndata: {"text":"é✓"}\n\n');
    const cut = bytes.indexOf(0xe2) + 1; // in the middle of ✓
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.slice(0, 5));
        c.enqueue(bytes.slice(5, cut));
        c.enqueue(bytes.slice(cut));
        c.close();
      },
    });
    const evs = [];
    for await (const ev of readSse(body)) evs.push(ev);
    expect(evs).toHaveLength(1);
    expect(JSON.parse(evs[0]?.data ?? "")).toEqual({ text: "é✓" });
  });

  it("yields many events from one chunk and joins one split across chunks", async () => {
    const evs = await collect(["data: a\n\ndata: b\n\nda", "ta: c\n\n"]);
    expect(evs.map((e) => [e.event, e.data])).toEqual([
      ["message", "a"],
      ["message", "b"],
      ["message", "c"],
    ]);
  });

  it("handles CRLF, comments, multi-line data, ids and a trailing unterminated event", async () => {
    const evs = await collect([
      ": keep-alive\r\n\r\nid: 7\r\ndata: x\r\ndata: y\r",
      "\n\r\ndata: lost",
    ]);
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ event: "message", data: "x\ny", id: "7" });
  });

  it("stops reading when the signal aborts", async () => {
    const controller = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("data: one\n\n"));
      },
    });
    const seen: string[] = [];
    const run = (async () => {
      for await (const ev of readSse(body, { signal: controller.signal })) {
        seen.push(ev.data);
        controller.abort();
      }
    })();
    await run;
    expect(seen).toEqual(["one"]);
  });
});

describe("SseParser", () => {
  it("ignores unknown fields and lines without data", () => {
    const p = new SseParser();
    expect(p.feed("retry: 10\nfoo: bar\n\nevent: x\n\n")).toEqual([]);
    expect(p.feed("data:no-space\n\n")).toEqual([{ event: "message", data: "no-space" }]);
  });
});

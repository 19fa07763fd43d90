import { describe, expect, it } from "vitest";
import { SseParser } from "../src/sse.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Every payload of `parts` fed to one parser, one part per chunk. */
function parse(parts: (string | Uint8Array)[]): string[] {
  const parser = new SseParser();
  return parts.flatMap((p) => parser.push(typeof p === "string" ? bytes(p) : p));
}

describe("SseParser", () => {
  it("splits events on a blank line and joins multi-line data", () => {
    expect(parse(["data: a\n\ndata: b\ndata: c\n\n"])).toEqual(["a", "b\nc"]);
  });

  it("accepts \\r\\n, \\r and \\n line ends", () => {
    expect(parse(["data: a\r\n\r\ndata: b\r\rdata: c\n\n"])).toEqual(["a", "b", "c"]);
  });

  it("a \\r\\n split across two chunks is one line end, not an event boundary", () => {
    // One event of two data lines: the \r ends one chunk, its \n starts the next.
    expect(parse(["data: a\r", "\ndata: b\r\n\r\n"])).toEqual(["a\nb"]);
  });

  it("a blank line's \\r\\n\\r\\n split after each byte still ends one event", () => {
    const text = "data: x\r\n\r\ndata: y\r\n\r\n";
    expect(parse([...text])).toEqual(["x", "y"]);
  });

  it("a multi-byte character split across chunks is decoded whole", () => {
    const all = bytes("data: é€\n\n");
    expect(parse([all.subarray(0, 7), all.subarray(7, 9), all.subarray(9)])).toEqual(["é€"]);
  });

  it("ignores comments, other fields and events without data", () => {
    expect(parse([": keep-alive\n\nevent: x\nid: 1\n\nretry: 5\ndata: y\n\n"])).toEqual(["y"]);
  });

  it("keeps an unfinished event until its blank line", () => {
    const parser = new SseParser();
    expect(parser.push(bytes("data: a\n"))).toEqual([]);
    expect(parser.push(bytes("\n"))).toEqual(["a"]);
  });
});

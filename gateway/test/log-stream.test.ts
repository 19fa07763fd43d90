import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BatchedLogStream } from "../src/log-stream.js";

function tempLog(): { path: string; fd: number } {
  const path = join(mkdtempSync(join(tmpdir(), "gateway-log-")), "out.log");
  return { path, fd: openSync(path, "w") };
}

describe("BatchedLogStream", () => {
  it("loses no line and keeps their order (flush waits for the writes in flight)", async () => {
    const { path, fd } = tempLog();
    const logs = new BatchedLogStream(fd, 5, 1000);
    const lines = Array.from({ length: 5000 }, (_, i) => `{"n":${i}}\n`);
    for (const [i, line] of lines.entries()) {
      logs.write(line);
      if (i % 700 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await logs.flush();
    expect(readFileSync(path, "utf8")).toBe(lines.join(""));
    closeSync(fd);
  });

  it("writes a quiet moment's lines within its delay, and on flushSync", async () => {
    const { path, fd } = tempLog();
    const logs = new BatchedLogStream(fd, 20);
    logs.write("a\n");
    logs.write("b\n");
    expect(readFileSync(path, "utf8")).toBe("");
    await new Promise((r) => setTimeout(r, 150));
    expect(readFileSync(path, "utf8")).toBe("a\nb\n");
    logs.write("c\n");
    logs.flushSync();
    expect(readFileSync(path, "utf8")).toBe("a\nb\nc\n");
    closeSync(fd);
  });
});

import { createParser } from "eventsource-parser";
import type { FastifyReply } from "fastify";

/**
 * A server-sent-events response on a hijacked reply: writes go straight to the socket
 * (no buffering), a comment line is sent after `heartbeatMs` of silence, and
 * `signal` aborts when the client goes away before the stream ended.
 */
export class SseStream {
  private readonly controller = new AbortController();
  private heartbeat: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly heartbeatMs: number,
    extraHeaders: Record<string, string> = {},
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.on("close", () => {
      if (!this.ended) this.controller.abort(new Error("client disconnected"));
      this.stopHeartbeat();
    });
    // Headers already set on the reply (CORS, rate-limit) go out too: a hijacked reply
    // skips Fastify's own header writing.
    const preset: Record<string, string | string[] | number> = {};
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) preset[name] = value;
    }
    raw.writeHead(200, {
      ...preset,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "x-request-id": String(reply.request.id),
      ...extraHeaders,
    });
    raw.flushHeaders();
    this.armHeartbeat();
  }

  /** Aborts when the client disconnects before `end()`. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.ended || this.controller.signal.aborted;
  }

  /** Writes raw bytes (already SSE-framed); resolves after backpressure clears. */
  async write(chunk: Uint8Array | string): Promise<void> {
    if (this.closed) return;
    this.armHeartbeat();
    if (!this.reply.raw.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.reply.raw.off("drain", done);
          this.reply.raw.off("close", done);
          resolve();
        };
        this.reply.raw.once("drain", done);
        this.reply.raw.once("close", done);
      });
    }
  }

  /** Writes one named event with a JSON payload. */
  event(name: string, data: unknown): Promise<void> {
    return this.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopHeartbeat();
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }

  private armHeartbeat(): void {
    // One timer per stream, pushed back on every write (not a new timer per chunk).
    if (this.heartbeat) {
      this.heartbeat.refresh();
      return;
    }
    this.heartbeat = setTimeout(() => {
      this.heartbeat = undefined;
      void this.write(": keep-alive\n\n");
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
  }
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Splits an SSE byte stream into the `data:` payloads of its events (eventsource-parser: line
 * ends `\r\n`, `\r` or `\n` even when split across chunks, comments and other fields skipped).
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private out: string[] = [];
  private readonly parser = createParser({
    onEvent: (event) => {
      this.out.push(event.data);
    },
  });

  /** The payloads of the events `chunk` completes (an unfinished one waits for the next). */
  push(chunk: Uint8Array): readonly string[] {
    this.parser.feed(this.decoder.decode(chunk, { stream: true }));
    if (this.out.length === 0) return NONE;
    const out = this.out;
    this.out = [];
    return out;
  }
}

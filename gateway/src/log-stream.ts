import pino from "pino";

/**
 * Where the server's log lines go: gathered for up to `delayMs` (or `maxBytes`), then
 * handed to an asynchronous writer (pino's SonicBoom) as one write, so a request costs no
 * write system call of its own. Lines keep their order; `flush` (graceful shutdown) writes
 * every one out, `flushSync` (exit) whatever it still can.
 */
export class BatchedLogStream {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly dest: ReturnType<typeof pino.destination>;

  constructor(
    fd = 1,
    private readonly delayMs = 50,
    private readonly maxBytes = 64 * 1024,
  ) {
    // minLength > 0: its flush(cb) then waits for the writes in flight (and fsyncs).
    this.dest = pino.destination({ dest: fd, sync: false, minLength: 1 });
  }

  write(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= this.maxBytes) this.drain();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.drain(), this.delayMs);
      this.timer.unref();
    }
  }

  /** Hands every gathered line to the writer now. */
  drain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const chunk = this.lines.join("");
    this.lines = [];
    this.bytes = 0;
    this.dest.write(chunk);
  }

  /** Resolves once every line written so far is out (the writes in flight included). */
  flush(): Promise<void> {
    this.drain();
    return new Promise((resolve) => {
      this.dest.flush(() => resolve());
    });
  }

  /** Writes what is left synchronously (for the process's `exit` event). */
  flushSync(): void {
    this.drain();
    this.dest.flushSync();
  }
}

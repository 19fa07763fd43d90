import { appendFileSync, closeSync, fsyncSync, openSync } from "node:fs";
import { type FileHandle, open, readFile, rename, stat } from "node:fs/promises";
import type { FastifyBaseLogger } from "fastify";
import { isDatabaseUnavailable } from "../db/outage.js";
import type { UsageRow } from "../db/schema.js";
import type { Metrics } from "./metrics.js";

/**
 * The spool: rows the database could not take, one JSON array (a batch) per line, appended
 * and fsync'd before the recorder counts them as kept. A torn last line (a crash mid-append)
 * is skipped when read.
 */
class SpoolFile {
  private handle: FileHandle | null = null;
  bytes = 0;

  constructor(readonly path: string) {}

  /** Opens (creating) the file; returns the rows already in it (from an earlier run). */
  async open(): Promise<number> {
    this.handle = await open(this.path, "a");
    this.bytes = (await stat(this.path)).size;
    return this.bytes === 0 ? 0 : (await this.read()).rows.length;
  }

  async append(rows: UsageRow[]): Promise<void> {
    const handle = this.handle ?? (await open(this.path, "a"));
    this.handle = handle;
    const line = `${JSON.stringify(rows)}\n`;
    await handle.appendFile(line);
    await handle.sync();
    this.bytes += Buffer.byteLength(line);
  }

  /** Appends synchronously (shutdown past its deadline, or a row recorded after close). */
  appendSync(rows: UsageRow[]): void {
    const fd = openSync(this.path, "a");
    try {
      const line = `${JSON.stringify(rows)}\n`;
      appendFileSync(fd, line);
      fsyncSync(fd);
      this.bytes += Buffer.byteLength(line);
    } finally {
      closeSync(fd);
    }
  }

  /** Every row in the file, from byte `from` on; `bytes`: where the file ended. */
  async read(from = 0): Promise<{ rows: UsageRow[]; torn: number; bytes: number }> {
    const data = await readFile(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return Buffer.alloc(0);
      throw err;
    });
    const rows: UsageRow[] = [];
    let torn = 0;
    for (const line of data.subarray(from).toString("utf8").split("\n")) {
      if (line === "") continue;
      try {
        rows.push(...(JSON.parse(line) as UsageRow[]));
      } catch {
        torn += 1;
      }
    }
    return { rows, torn, bytes: data.length };
  }

  /**
   * Replaces the first `upTo` bytes (what was read) with `rows`, keeping whatever was appended
   * since, atomically (temp file, fsync, rename). Returns the rows the file now holds.
   */
  async replace(rows: UsageRow[], upTo: number): Promise<number> {
    const tail = await this.read(upTo);
    const kept = [...rows, ...tail.rows];
    const tmp = `${this.path}.tmp`;
    const out = await open(tmp, "w");
    const text = kept.length > 0 ? `${JSON.stringify(kept)}\n` : "";
    try {
      await out.writeFile(text);
      await out.sync();
    } finally {
      await out.close();
    }
    await this.handle?.close();
    this.handle = null;
    await rename(tmp, this.path);
    this.handle = await open(this.path, "a");
    this.bytes = Buffer.byteLength(text);
    return kept.length;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }
}

/** Where the recorder's lines go (the app's logger). */
type RecorderLog = Pick<FastifyBaseLogger, "error" | "warn" | "info">;

export interface UsageRecorderOptions {
  /** Rows recorded within this many ms go to the database in one insert. */
  batchMs?: number;
  /**
   * Append-only file (next to the database) keeping rows the database could not take, replayed
   * at start and once the database answers again; unset: they are kept in memory only.
   */
  spoolPath?: string | undefined;
  /** Rows kept in memory (no spool file, or it cannot be written); past it the oldest go. */
  maxHeldRows?: number;
  /** Size of the spool file past which further rows are kept in memory only. */
  maxSpoolBytes?: number;
  /** First retry after this delay, doubled each time up to `retryMaxMs` (with jitter). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  metrics?: Metrics | undefined;
  log?: RecorderLog | undefined;
}

/** What a flush achieved: rows still waiting for the database, where they wait. */
export interface FlushResult {
  /** In the spool file (durable; written at the next start at the latest). */
  spooled: number;
  /** In memory only (lost if the process exits now). */
  held: number;
}

/**
 * Writes usage rows in batches and never loses one to a database outage: when a write fails
 * because the database is busy, locked, read-only, full or unreachable, its rows go to the
 * spool file (fsync'd) — or memory, bounded — and are written again with back-off, in the
 * order they came; while rows wait, new ones join them. A row the database refuses for
 * another reason (its user was deleted) is dropped, logged and counted. Operations run one
 * at a time.
 */
export class UsageRecorder {
  private readonly opts: Required<Omit<UsageRecorderOptions, "spoolPath" | "metrics" | "log">>;
  private readonly spool: SpoolFile | null;
  private readonly metrics: Metrics | undefined;
  private readonly log: RecorderLog | undefined;
  /** Recorded, waiting for the batch timer. */
  private queue: UsageRow[] = [];
  private batch: { promise: Promise<void>; fire: () => void } | null = null;
  /** Refused by an outage and not in the spool file. */
  private held: UsageRow[] = [];
  private spooled = 0;
  private outage = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly write: (rows: UsageRow[]) => Promise<void>,
    private readonly track: <T>(write: Promise<T>) => Promise<T> = (w) => w,
    options: UsageRecorderOptions = {},
  ) {
    this.opts = {
      batchMs: options.batchMs ?? 20,
      maxHeldRows: options.maxHeldRows ?? 100_000,
      maxSpoolBytes: options.maxSpoolBytes ?? 256 * 1024 * 1024,
      retryBaseMs: options.retryBaseMs ?? 500,
      retryMaxMs: options.retryMaxMs ?? 10_000,
    };
    this.spool = options.spoolPath ? new SpoolFile(options.spoolPath) : null;
    this.metrics = options.metrics;
    this.log = options.log;
  }

  /** Rows waiting for the database (spool file and memory). */
  get backlog(): number {
    return this.spooled + this.held.length;
  }

  /** Opens the spool file; rows left in it by an earlier run are written as soon as possible. */
  async start(): Promise<void> {
    if (!this.spool) return;
    try {
      this.spooled = await this.spool.open();
    } catch (err) {
      // Rows can still be kept in memory; each later spooling tries the file again.
      this.log?.error({ err, path: this.spool.path }, "cannot open the usage spool file");
      return;
    }
    if (this.spooled > 0) {
      this.log?.warn({ rows: this.spooled }, "usage rows spooled by an earlier run; replaying");
      this.scheduleRetry(0);
    }
  }

  /**
   * Queues one row. Resolves once its batch is in the database or kept for later (spool
   * file or memory); never rejects.
   */
  record(row: UsageRow): Promise<void> {
    if (this.closed) {
      this.afterClose([row]);
      return Promise.resolve();
    }
    this.queue.push(row);
    if (!this.batch) {
      let fire = () => {};
      const due = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.batchMs);
        fire = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      const promise = this.track(due.then(() => this.serial(() => this.writeQueued())));
      this.batch = { promise, fire };
    }
    return this.batch.promise;
  }

  /**
   * Writes what is queued and retries the waiting rows now, for at most `deadlineMs`
   * milliseconds; then whatever is still only in memory is appended to the spool file
   * (synchronously). Call it before the process exits.
   */
  async flush(deadlineMs = 5_000): Promise<FlushResult> {
    this.batch?.fire();
    const work = this.serial(async () => {
      await this.writeQueued();
      if (this.backlog > 0) await this.retry(false);
    });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), Math.max(0, deadlineMs));
    });
    const outcome = await Promise.race([work.then(() => "done" as const), expired]);
    clearTimeout(timer);
    if (outcome === "expired") this.spoolHeldSync();
    return { spooled: this.spooled, held: this.held.length + this.queue.length };
  }

  /** `flush(deadlineMs)`, then stops retrying and closes the spool file; later rows are spooled at once. */
  async close(deadlineMs = 5_000): Promise<FlushResult> {
    const result = await this.flush(deadlineMs);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.spoolHeldSync();
    await this.spool?.close();
    if (this.held.length > 0) {
      this.log?.error({ rows: this.held.length }, "usage rows lost: no spool file to keep them");
      this.metrics?.usageDropped.inc({ reason: "shutdown" }, this.held.length);
      this.held = [];
    }
    return { ...result, spooled: this.spooled };
  }

  /** Runs operations one at a time, in call order; a failure does not stop the next. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op, op);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeQueued(): Promise<void> {
    this.batch = null;
    const rows = this.queue;
    this.queue = [];
    if (rows.length === 0) return;
    if (this.outage || this.backlog > 0) {
      // Behind rows already waiting: keep the order, and spare the database while it is down.
      await this.keep(rows);
      return;
    }
    const rest = await this.tryWrite(rows);
    if (rest.length > 0) await this.keep(rest);
  }

  /**
   * Writes `rows`; returns those that must wait (an outage). Rows refused for another reason
   * are found by writing them one by one, and dropped.
   */
  private async tryWrite(rows: UsageRow[]): Promise<UsageRow[]> {
    try {
      await this.write(rows);
      this.recovered();
      return [];
    } catch (err) {
      if (isDatabaseUnavailable(err)) return this.failed(err, rows);
      const rest: UsageRow[] = [];
      for (const [i, row] of rows.entries()) {
        try {
          await this.write([row]);
        } catch (rowErr) {
          if (isDatabaseUnavailable(rowErr)) {
            rest.push(...this.failed(rowErr, rows.slice(i)));
            break;
          }
          this.log?.error({ err: rowErr, userId: row.userId }, "usage row refused; dropped");
          this.metrics?.usageDropped.inc({ reason: "refused" });
        }
      }
      if (rest.length === 0) this.recovered();
      return rest;
    }
  }

  private failed(err: unknown, rows: UsageRow[]): UsageRow[] {
    if (!this.outage) {
      this.log?.error(
        { err, rows: rows.length },
        "database unavailable: usage rows kept for later",
      );
    }
    this.outage = true;
    this.scheduleRetry();
    return rows;
  }

  private recovered(): void {
    if (this.outage) this.log?.info({}, "database available again: usage rows written");
    this.outage = false;
    this.attempt = 0;
  }

  /** Keeps rows for a later write: the spool file when it can take them, else memory. */
  private async keep(rows: UsageRow[]): Promise<void> {
    if (this.spool && this.spool.bytes < this.opts.maxSpoolBytes) {
      try {
        await this.spool.append(rows);
        this.spooled += rows.length;
        this.metrics?.usageSpooled.inc({ to: "file" }, rows.length);
        this.scheduleRetry();
        return;
      } catch (err) {
        this.log?.error({ err, path: this.spool.path }, "cannot write the usage spool file");
      }
    }
    this.held.push(...rows);
    this.metrics?.usageSpooled.inc({ to: "memory" }, rows.length);
    const excess = this.held.length - this.opts.maxHeldRows;
    if (excess > 0) {
      this.held.splice(0, excess);
      this.metrics?.usageDropped.inc({ reason: "bound" }, excess);
      this.log?.error(
        { dropped: excess, bound: this.opts.maxHeldRows },
        "usage rows dropped: the in-memory spool is full",
      );
    }
    this.scheduleRetry();
  }

  private scheduleRetry(delayMs?: number): void {
    if (this.retryTimer || this.closed || this.backlog === 0) return;
    const base = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** this.attempt);
    const delay = delayMs ?? base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.serial(() => this.retry(true));
    }, delay);
    // Waiting rows are in the spool file (or flushed at shutdown): no reason to keep the
    // process alive for them.
    this.retryTimer.unref();
  }

  /** Writes every waiting row (spool file first, then memory) in one transaction. */
  private async retry(reschedule: boolean): Promise<void> {
    if (this.backlog === 0) return;
    this.metrics?.usageRetries.inc();
    this.attempt += 1;
    let read: Awaited<ReturnType<SpoolFile["read"]>> | null;
    try {
      read = this.spool && this.spooled > 0 ? await this.spool.read() : null;
    } catch (err) {
      this.log?.error({ err }, "cannot read the usage spool file");
      if (reschedule) this.scheduleRetry();
      return;
    }
    if (read && read.torn > 0)
      this.log?.warn({ lines: read.torn }, "torn usage spool line skipped");
    // Taken out while written, so that a shutdown past its deadline does not spool them twice.
    const held = this.held.splice(0);
    const rows = [...(read?.rows ?? []), ...held];
    const rest = await this.tryWrite(rows);
    // What still waits is a suffix of `rows`: the file's part first, then memory's.
    const heldRest = rest.slice(Math.max(0, rest.length - held.length));
    const fileRest = rest.slice(0, rest.length - heldRest.length);
    this.held.unshift(...heldRest);
    if (read && rest.length < rows.length) {
      try {
        this.spooled = await (this.spool as SpoolFile).replace(fileRest, read.bytes);
      } catch (err) {
        // Those rows are in the database and still in the file: the next start writes them twice.
        this.log?.error({ err }, "cannot rewrite the usage spool file");
      }
    }
    if (reschedule) this.scheduleRetry();
  }

  /** Moves queued and memory-held rows into the spool file, synchronously (shutdown). */
  private spoolHeldSync(): void {
    const rows = [...this.held, ...this.queue];
    if (!this.spool || rows.length === 0) return;
    try {
      this.spool.appendSync(rows);
      this.spooled += rows.length;
      this.held = [];
      this.queue = [];
    } catch (err) {
      this.log?.error({ err, rows: rows.length }, "cannot write the usage spool file");
    }
  }

  private afterClose(rows: UsageRow[]): void {
    if (this.spool) {
      this.held.push(...rows);
      this.spoolHeldSync();
      if (this.held.length === 0) return;
    }
    this.log?.error({ rows: rows.length }, "usage row recorded after close: lost");
    this.metrics?.usageDropped.inc({ reason: "closed" }, rows.length);
    this.held = [];
  }
}

import { sql } from "kysely";
import type { Database } from "../db/database.js";
import { prepared } from "../db/prepared.js";
import type { UsageRow } from "../db/schema.js";
import { DAY_MS } from "./limit-store.js";
import { type FlushResult, UsageRecorder, type UsageRecorderOptions } from "./recorder.js";

export type { UsageRow } from "../db/schema.js";
export type GroupBy = "user" | "day" | "model";

interface Stats {
  requests: number;
  errors: number;
  rejected: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  durations: number[];
  ttfts: number[];
}

const empty = (): Stats => ({
  requests: 0,
  errors: 0,
  rejected: 0,
  cacheHits: 0,
  promptTokens: 0,
  completionTokens: 0,
  durations: [],
  ttfts: [],
});

/** Nearest-rank percentile of an ascending list; null when empty. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

const rate = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 10_000) / 10_000);

function summary(s: Stats) {
  const d = [...s.durations].sort((a, b) => a - b);
  const t = [...s.ttfts].sort((a, b) => a - b);
  return {
    requests: s.requests,
    errors: s.errors,
    errorRate: rate(s.errors, s.requests),
    rejected: s.rejected,
    cacheHits: s.cacheHits,
    cacheHitRate: rate(s.cacheHits, s.requests),
    promptTokens: s.promptTokens,
    completionTokens: s.completionTokens,
    totalTokens: s.promptTokens + s.completionTokens,
    latencyP50Ms: percentile(d, 50),
    latencyP95Ms: percentile(d, 95),
    latencyP99Ms: percentile(d, 99),
    ttftP50Ms: percentile(t, 50),
    ttftP95Ms: percentile(t, 95),
    ttftP99Ms: percentile(t, 99),
  };
}

function add(s: Stats, r: UsageRow): void {
  s.requests += 1;
  if (r.status >= 500 || r.outcome === "error") s.errors += 1;
  if (r.status === 429) s.rejected += 1;
  if (r.cacheHit) s.cacheHits += 1;
  s.promptTokens += r.promptTokens;
  s.completionTokens += r.completionTokens;
  if (r.status < 400) s.durations.push(r.durationMs);
  if (r.ttftMs !== null) s.ttfts.push(r.ttftMs);
}

/** Column order of the prepared insert (its parameters follow it). */
const COLUMNS = [
  "ts",
  "userId",
  "apiKeyId",
  "route",
  "model",
  "promptTokens",
  "completionTokens",
  "quotaTokens",
  "ttftMs",
  "durationMs",
  "status",
  "outcome",
  "cacheHit",
  "server",
  "errorCode",
  "estimated",
] as const satisfies readonly (keyof UsageRow)[];

/** The row's columns only (a spooled row may carry nothing else, but be sure). */
const pick = (r: UsageRow) => Object.fromEntries(COLUMNS.map((c) => [c, r[c]])) as UsageRow;

/** Rows written together at most (16 parameters each, well under the engines' limits). */
const BATCH_ROWS = 500;

/**
 * Writes one row per LLM request and aggregates them for the usage routes. Rows are
 * written in batches by a UsageRecorder (those recorded within `batchMs` go in one
 * multi-row insert), which keeps them through a database outage.
 */
export class UsageService {
  private readonly tokensByUser;
  private readonly tokensByKey;
  readonly recorder: UsageRecorder;

  constructor(
    private readonly db: Database,
    recorder: UsageRecorderOptions = {},
  ) {
    this.recorder = new UsageRecorder(
      (rows) => this.insert(rows),
      (write) => db.background(write),
      recorder,
    );
    const k = db.kysely;
    const sum = (column: "userId" | "apiKeyId") =>
      prepared<{ n: number | string }, [string, number]>(
        k,
        k
          .selectFrom("usage_record")
          .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("quotaTokens"), eb.lit(0)).as("n"))
          .where(column, "=", "")
          .where("ts", ">=", 0),
      );
    this.tokensByUser = sum("userId");
    this.tokensByKey = sum("apiKeyId");
  }

  /**
   * Stores one row (with the others recorded within `batchMs`). The caller need not wait:
   * readers here (and `Database.close`) wait for writes in flight, so a reply never waits
   * for its own usage row. Resolves once the row's batch is written or kept for later (the
   * database is unavailable); never rejects.
   */
  record(row: UsageRow): Promise<void> {
    return this.recorder.record(row);
  }

  /** Opens the spool file and replays what an earlier run left in it (in the background). */
  start(): Promise<void> {
    return this.recorder.start();
  }

  /**
   * Writes every queued and waiting row, for at most `deadlineMs`; past it, rows still in
   * memory go to the spool file. For graceful shutdown, before the database closes.
   */
  flush(deadlineMs?: number): Promise<FlushResult> {
    return this.recorder.flush(deadlineMs);
  }

  /** `flush(deadlineMs)`, then no more retries; rows recorded later go straight to the spool. */
  close(deadlineMs?: number): Promise<FlushResult> {
    return this.recorder.close(deadlineMs);
  }

  /** Inserts rows; more than one statement's worth in one transaction (all or none). */
  private async insert(rows: UsageRow[]): Promise<void> {
    const chunks: UsageRow[][] = [];
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      chunks.push(
        rows
          .slice(i, i + BATCH_ROWS)
          // A row spooled by an older gateway has no `estimated`: it was exact.
          .map((r) => ({ ...pick(r), estimated: r.estimated ?? 0 })),
      );
    }
    const [only] = chunks;
    await this.db.bulk(async (db) => {
      if (chunks.length === 1 && only) {
        await db.insertInto("usage_record").values(only).execute();
        return;
      }
      await db.transaction().execute(async (trx) => {
        for (const values of chunks) await trx.insertInto("usage_record").values(values).execute();
      });
    });
  }

  /** Requests and tokens (prompt and completion) per model since `since`: the admin's model list. */
  async byModelSince(since: number): Promise<Map<string, { requests: number; tokens: number }>> {
    await this.db.drain();
    const rows = await this.db.kysely
      .selectFrom("usage_record")
      .select((eb) => [
        "model",
        eb.fn.countAll<number | string>().as("requests"),
        sql<
          number | string
        >`coalesce(sum(${sql.ref("promptTokens")} + ${sql.ref("completionTokens")}), 0)`.as(
          "tokens",
        ),
      ])
      .where("ts", ">=", since)
      .where("model", "is not", null)
      .groupBy("model")
      .execute();
    // PostgreSQL's COUNT and SUM of bigints come back as strings.
    return new Map(
      rows.map((r) => [
        String(r.model),
        { requests: Number(r.requests), tokens: Number(r.tokens) },
      ]),
    );
  }

  /**
   * Quota tokens charged to `user:<id>`, `key:<id>` or `model:<userId>:<model>` (the user's
   * rows that name that model, in any case) since `since` (seeds the counters).
   */
  async tokensSince(subject: string, since: number): Promise<number> {
    await this.db.drain();
    const [kind, id = ""] = subject.split(/:(.*)/s);
    if (kind === "model") return this.modelTokensSince(id, since);
    const q = kind === "key" ? this.tokensByKey : this.tokensByUser;
    const [row] = await q(id, since);
    // PostgreSQL's SUM of a bigint is NUMERIC, which pg returns as a string.
    return Number(row?.n ?? 0);
  }

  /** Quota tokens of `<userId>:<model key>` since `since` (read once a day per quota). */
  private async modelTokensSince(id: string, since: number): Promise<number> {
    const colon = id.indexOf(":");
    const row = await this.db.kysely
      .selectFrom("usage_record")
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("quotaTokens"), eb.lit(0)).as("n"))
      .where("userId", "=", id.slice(0, colon))
      .where((eb) => eb(eb.fn("lower", ["model"]), "=", id.slice(colon + 1)))
      .where("ts", ">=", since)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  private async rows(from: number, to: number, userId?: string) {
    await this.db.drain();
    let q = this.db.kysely
      .selectFrom("usage_record")
      .leftJoin("user", "user.id", "usage_record.userId")
      .selectAll("usage_record")
      .select("user.email as email")
      .where("ts", ">=", from)
      .where("ts", "<", to);
    if (userId) q = q.where("usage_record.userId", "=", userId);
    return q.orderBy("ts").execute();
  }

  /** Totals and per-group rows (user, day or model) over [from, to). */
  async aggregate(from: number, to: number, groupBy: GroupBy, userId?: string) {
    const total = empty();
    const groups = new Map<string, { stats: Stats; label: Record<string, string | null> }>();
    for (const r of await this.rows(from, to, userId)) {
      add(total, r);
      // Calls that name no model (model lists) are in the totals, not under a model.
      if (groupBy === "model" && r.model === null) continue;
      const key =
        groupBy === "day"
          ? new Date(r.ts).toISOString().slice(0, 10)
          : groupBy === "user"
            ? r.userId
            : (r.model ?? "");
      let g = groups.get(key);
      if (!g) {
        const label: Record<string, string | null> =
          groupBy === "day"
            ? { day: key }
            : groupBy === "user"
              ? { userId: r.userId, email: r.email ?? null }
              : { model: key };
        g = { stats: empty(), label };
        groups.set(key, g);
      }
      add(g.stats, r);
    }
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      groupBy,
      totals: summary(total),
      rows: [...groups.values()].map((g) => ({ ...g.label, ...summary(g.stats) })),
    };
  }

  /** The last `days` days of one user, one row per day (zero days included). */
  async days(userId: string, days: number, now: number) {
    const start = Math.floor(now / DAY_MS) * DAY_MS - (days - 1) * DAY_MS;
    const result = await this.aggregate(start, now + 1, "day", userId);
    const byDay = new Map(result.rows.map((r) => [String((r as Record<string, unknown>).day), r]));
    const out = [];
    for (let t = start; t <= now; t += DAY_MS) {
      const day = new Date(t).toISOString().slice(0, 10);
      const r = byDay.get(day);
      out.push({
        day,
        requests: r?.requests ?? 0,
        promptTokens: r?.promptTokens ?? 0,
        completionTokens: r?.completionTokens ?? 0,
        cacheHits: r?.cacheHits ?? 0,
        errors: r?.errors ?? 0,
      });
    }
    return { totals: result.totals, days: out };
  }
}

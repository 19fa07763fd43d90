import type { Limits } from "../config.js";

export type LimitName = "requests_per_minute" | "concurrent_streams" | "tokens_per_day";

/** A party whose counters are checked: `user:<id>` or `key:<id>`, with its effective limits. */
export interface Subject {
  id: string;
  limits: Limits;
}

/** Prefix of the subjects of per-model quotas: `model:<userId>:<model key>`. */
const MODEL_SUBJECT = "model:";

/** The model a per-model subject id counts, or null for another subject. */
export function modelOfSubject(subject: string): string | null {
  if (!subject.startsWith(MODEL_SUBJECT)) return null;
  const rest = subject.slice(MODEL_SUBJECT.length);
  const colon = rest.indexOf(":");
  return colon === -1 ? null : rest.slice(colon + 1);
}

/**
 * The subject of one user's daily tokens of one model (user ids hold no colon; a model key
 * may): only a token limit, on top of the user's own limits.
 */
export function modelSubject(userId: string, key: string, tokensPerDay: number): Subject {
  return {
    id: `${MODEL_SUBJECT}${userId}:${key}`,
    limits: { requestsPerMinute: 0, tokensPerDay, concurrentStreams: 0, maxTokens: 0 },
  };
}

export interface AcquireRequest {
  subjects: Subject[];
  /** Tokens wanted for the reservation (0: no token check, e.g. a free cache hit). */
  tokens: number;
  /** Refuse when less than this remains of a daily token quota. */
  minTokens: number;
  /** Takes a concurrent-stream slot (released by settle). */
  concurrent: boolean;
  now: number;
}

export type AcquireResult =
  | { ok: true; reserved: number; day: string }
  | { ok: false; limit: LimitName; subject: string; value: number; resetAt: number };

export interface SettleRequest {
  subjects: Subject[];
  reserved: number;
  used: number;
  concurrent: boolean;
  day: string;
}

export interface Counters {
  requestsThisMinute: number;
  concurrent: number;
  tokensToday: number;
}

/**
 * Atomic check-and-increment of every subject's counters: either all limits pass and all
 * counters move, or nothing changes. `MemoryLimitStore` (one process) and
 * `RedisLimitStore` (shared by several gateways) implement it.
 */
export interface LimitStore {
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  settle(request: SettleRequest): Promise<void>;
  counters(subject: string, now: number): Promise<Counters>;
}

/** A token reservation with no daily limit behind it: charged at settle, not before. */
export const UNBOUNDED = 1e15;

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export const minuteStart = (now: number) => Math.floor(now / MINUTE_MS) * MINUTE_MS;
export const dayStart = (now: number) => Math.floor(now / DAY_MS) * DAY_MS;
export const dayKey = (now: number) => new Date(dayStart(now)).toISOString().slice(0, 10);

/** Tokens already charged to a subject since `since` (epoch ms), read once per day. */
export type TokenSeed = (subject: string, since: number) => Promise<number> | number;

/**
 * Counters in this process. JavaScript runs the check and the increments without
 * yielding, so parallel requests cannot both pass the last unit of a limit. The day's
 * token counter starts from the usage table (`seed`), so a restart keeps it; that read is
 * awaited before the check, never inside it, and parallel first requests share one read.
 */
export class MemoryLimitStore implements LimitStore {
  private readonly minute = new Map<string, { start: number; count: number }>();
  private readonly concurrent = new Map<string, number>();
  private readonly tokens = new Map<string, { day: string; used: number }>();

  private readonly seeding = new Map<string, Promise<void>>();

  constructor(private readonly seed: TokenSeed = () => 0) {}

  /** Loads each subject's token counter for the day of `now` unless it is loaded already. */
  private async seedTokens(subjects: string[], now: number): Promise<void> {
    const day = dayKey(now);
    const reads: Promise<void>[] = [];
    for (const id of subjects) {
      const entry = this.tokens.get(id);
      if (entry && entry.day >= day) continue;
      const key = `${id}\n${day}`;
      let read = this.seeding.get(key);
      if (!read) {
        read = (async () => {
          const used = await this.seed(id, dayStart(now));
          const current = this.tokens.get(id);
          if (!current || current.day < day) this.tokens.set(id, { day, used });
        })().finally(() => this.seeding.delete(key));
        this.seeding.set(key, read);
      }
      reads.push(read);
    }
    await Promise.all(reads);
  }

  /** The subject's token counter; seedTokens() ran for it (entries are never removed). */
  private tokenEntry(subject: string) {
    const entry = this.tokens.get(subject);
    if (!entry) throw new Error(`token counter of ${subject} not loaded`);
    return entry;
  }

  private minuteCount(subject: string, now: number): number {
    const entry = this.minute.get(subject);
    return entry && entry.start === minuteStart(now) ? entry.count : 0;
  }

  async acquire(r: AcquireRequest): Promise<AcquireResult> {
    if (r.tokens > 0)
      await this.seedTokens(
        r.subjects.map((s) => s.id),
        r.now,
      );
    // From here to the return: no await, so the checks and increments are one atomic step.
    let reserved = r.tokens;
    for (const s of r.subjects) {
      const { requestsPerMinute, concurrentStreams, tokensPerDay } = s.limits;
      if (requestsPerMinute > 0 && this.minuteCount(s.id, r.now) >= requestsPerMinute) {
        const resetAt = minuteStart(r.now) + MINUTE_MS;
        return {
          ok: false,
          limit: "requests_per_minute",
          subject: s.id,
          value: requestsPerMinute,
          resetAt,
        };
      }
      if (
        r.concurrent &&
        concurrentStreams > 0 &&
        (this.concurrent.get(s.id) ?? 0) >= concurrentStreams
      ) {
        return {
          ok: false,
          limit: "concurrent_streams",
          subject: s.id,
          value: concurrentStreams,
          resetAt: r.now + 1000,
        };
      }
      if (r.tokens > 0 && tokensPerDay > 0) {
        const left = tokensPerDay - this.tokenEntry(s.id).used;
        if (left <= 0 || left < r.minTokens) {
          const resetAt = dayStart(r.now) + DAY_MS;
          return {
            ok: false,
            limit: "tokens_per_day",
            subject: s.id,
            value: tokensPerDay,
            resetAt,
          };
        }
        reserved = Math.min(reserved, left);
      }
    }
    for (const s of r.subjects) {
      const start = minuteStart(r.now);
      const entry = this.minute.get(s.id);
      if (entry && entry.start === start) entry.count += 1;
      else this.minute.set(s.id, { start, count: 1 });
      if (r.concurrent) this.concurrent.set(s.id, (this.concurrent.get(s.id) ?? 0) + 1);
      if (reserved > 0 && reserved < UNBOUNDED) this.tokenEntry(s.id).used += reserved;
    }
    return { ok: true, reserved, day: dayKey(r.now) };
  }

  async settle(r: SettleRequest): Promise<void> {
    for (const s of r.subjects) {
      if (r.concurrent)
        this.concurrent.set(s.id, Math.max(0, (this.concurrent.get(s.id) ?? 0) - 1));
      const entry = this.tokens.get(s.id);
      const delta = r.reserved >= UNBOUNDED ? r.used : r.used - r.reserved;
      if (entry && entry.day === r.day) entry.used = Math.max(0, entry.used + delta);
    }
  }

  async counters(subject: string, now: number): Promise<Counters> {
    await this.seedTokens([subject], now);
    const entry = this.tokenEntry(subject);
    return {
      requestsThisMinute: this.minuteCount(subject, now),
      concurrent: this.concurrent.get(subject) ?? 0,
      tokensToday: entry.day === dayKey(now) ? entry.used : 0,
    };
  }
}

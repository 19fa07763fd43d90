import { TtlCache } from "../auth/ttl-cache.js";
import type { Limits } from "../config.js";
import type { Database } from "../db/database.js";
import { prepared } from "../db/prepared.js";
import { HttpError } from "../errors.js";
import type { Role } from "../schemas.js";
import {
  DAY_MS,
  dayStart,
  type LimitName,
  type LimitStore,
  MINUTE_MS,
  minuteStart,
  modelOfSubject,
  type SettleRequest,
  type Subject,
} from "./limit-store.js";

export interface Caller {
  userId: string;
  role: Role;
  apiKeyId: string | null;
}

/** Limits an admin set; null keeps the role default, 0 means no limit. */
export type LimitOverrides = { [K in keyof Limits]: number | null };

export interface Admission {
  subjects: Subject[];
  reserved: number;
  day: string;
  concurrent: boolean;
  /** The per-request max_tokens cap (0: none). */
  maxTokens: number;
  settled: boolean;
}

const LIMIT_KEYS = ["requestsPerMinute", "tokensPerDay", "concurrentStreams", "maxTokens"] as const;
/** No limit of a subject's own: every field from the defaults (or the user's, for a key). */
export const NO_OVERRIDES: LimitOverrides = {
  requestsPerMinute: null,
  tokensPerDay: null,
  concurrentStreams: null,
  maxTokens: null,
};

/** An API key without its own value for a limit is held only by its user's. */
const NO_KEY_LIMITS: Limits = {
  requestsPerMinute: 0,
  tokensPerDay: 0,
  concurrentStreams: 0,
  maxTokens: 0,
};

const LABEL: Record<LimitName, (n: number) => string> = {
  requests_per_minute: (n) => `${n} requests per minute`,
  concurrent_streams: (n) => `${n} concurrent requests`,
  tokens_per_day: (n) => `${n} tokens per day`,
};
const WINDOW_S: Record<LimitName, number | null> = {
  requests_per_minute: 60,
  concurrent_streams: null,
  tokens_per_day: 86_400,
};

function merge(defaults: Limits, o: LimitOverrides): Limits {
  return {
    requestsPerMinute: o.requestsPerMinute ?? defaults.requestsPerMinute,
    tokensPerDay: o.tokensPerDay ?? defaults.tokensPerDay,
    concurrentStreams: o.concurrentStreams ?? defaults.concurrentStreams,
    maxTokens: o.maxTokens ?? defaults.maxTokens,
  };
}

/**
 * An API key's own limits from the admin's (`key:<id>`) and its owner's (`keyown:<id>`)
 * overrides: the tighter of both (0 = no key-level limit), or null when neither exists.
 */
function keyLimits(
  admin: LimitOverrides | undefined,
  owner: LimitOverrides | undefined,
): Limits | null {
  if (!admin && !owner) return null;
  const a = merge(NO_KEY_LIMITS, admin ?? NO_OVERRIDES);
  const o = merge(NO_KEY_LIMITS, owner ?? NO_OVERRIDES);
  const tighter = (x: number, y: number) => (x === 0 ? y : y === 0 ? x : Math.min(x, y));
  return {
    requestsPerMinute: tighter(a.requestsPerMinute, o.requestsPerMinute),
    tokensPerDay: tighter(a.tokensPerDay, o.tokensPerDay),
    concurrentStreams: tighter(a.concurrentStreams, o.concurrentStreams),
    maxTokens: tighter(a.maxTokens, o.maxTokens),
  };
}

/**
 * The 429 for a refused request: which limit, whose (the API key's own or the user's, from
 * the subject id), when it resets, Retry-After and RateLimit-*.
 */
export function limitError(
  limit: LimitName,
  value: number,
  resetAt: number,
  now: number,
  subject = "user:",
) {
  const seconds = Math.max(1, Math.ceil((resetAt - now) / 1000));
  const window = WINDOW_S[limit];
  const headers: Record<string, string> = {
    "retry-after": String(seconds),
    "ratelimit-limit": String(value),
    "ratelimit-remaining": "0",
    "ratelimit-reset": String(seconds),
    ...(window ? { "ratelimit-policy": `${value};w=${window}` } : {}),
  };
  const when =
    limit === "concurrent_streams"
      ? "retry when one of them finishes"
      : `resets at ${new Date(resetAt).toISOString()} (in ${seconds} s)`;
  const model = modelOfSubject(subject);
  const whose =
    model !== null ? `model "${model}"` : subject.startsWith("key:") ? "API key" : "user";
  const what = model !== null ? `${LABEL[limit](value)} of this model` : LABEL[limit](value);
  return new HttpError(
    429,
    limit.toUpperCase(),
    `Limit reached (${whose}): ${what}; ${when}`,
    headers,
  );
}

/** One limit's meter for the caller's quota page (limit 0: none, so no remaining). */
function meter(used: number, limit: number, resetAt: number | null) {
  return {
    used,
    limit: limit > 0 ? limit : null,
    remaining: limit > 0 ? Math.max(0, limit - used) : null,
    resetAt: resetAt === null ? null : new Date(resetAt).toISOString(),
  };
}

/** Settles that failed (the store was unreachable), kept to be tried again. */
const MAX_UNSETTLED = 10_000;
const SETTLE_RETRY_MS = 5_000;

/**
 * Limits per user and per API key: role defaults from the config, admin overrides in
 * the database, counters in a LimitStore (memory or Redis).
 */
export class LimitService {
  private readonly overrideQuery;
  /** Overrides read on the hot path (none: null), by subject; cleared by setOverrides. */
  private readonly cached: TtlCache<LimitOverrides | null>;
  /** Settles the store refused, oldest first, retried every SETTLE_RETRY_MS. */
  private unsettled: SettleRequest[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private retrying = false;

  /**
   * @param overridesTtlMs how long `subjects` reuses overrides it read (0: always read);
   *   setOverrides here clears them at once, the TTL bounds another process's changes.
   * @param onSettleFailure told of every settle the store refused (logs and a metric).
   */
  constructor(
    private readonly db: Database,
    private readonly store: LimitStore,
    private readonly defaults: Record<Role, Limits>,
    private readonly clock: () => number = Date.now,
    overridesTtlMs = 0,
    private readonly onSettleFailure: (err: unknown, waiting: number) => void = () => {},
  ) {
    this.cached = new TtlCache(overridesTtlMs, 10_000, clock);
    // Read on every LLM request: compiled once.
    const k = db.kysely;
    this.overrideQuery = prepared<LimitOverrides, [string]>(
      k,
      k.selectFrom("limit_override").select(LIMIT_KEYS).where("subject", "=", ""),
    );
  }

  /** The stored overrides of `user:<id>`, `key:<id>` or `keyown:<id>`, if any. */
  async overrides(subject: string): Promise<LimitOverrides | undefined> {
    const [row] = await this.overrideQuery(subject);
    return row;
  }

  /**
   * The user's subject always; the API key's too when it has limits of its own: the
   * tighter of what an admin set (`key:<id>`) and what its owner set (`keyown:<id>`).
   * Every override is read (in parallel) before the caller's atomic reservation.
   */
  async subjects(caller: Caller): Promise<Subject[]> {
    const [userOverrides, key] = await Promise.all([
      this.cachedOverrides(`user:${caller.userId}`),
      caller.apiKeyId ? this.keyLimits(caller.apiKeyId) : null,
    ]);
    const user = merge(this.defaults[caller.role], userOverrides ?? NO_OVERRIDES);
    const out: Subject[] = [{ id: `user:${caller.userId}`, limits: user }];
    if (key) out.push({ id: `key:${caller.apiKeyId}`, limits: key });
    return out;
  }

  /** An API key's effective own limits (0 = none), or null when nobody set any. */
  private async keyLimits(apiKeyId: string): Promise<Limits | null> {
    const [admin, owner] = await Promise.all([
      this.cachedOverrides(`key:${apiKeyId}`),
      this.cachedOverrides(`keyown:${apiKeyId}`),
    ]);
    return keyLimits(admin, owner);
  }

  /** `overrides`, through the cache when it is on (the hot path's reads). */
  private async cachedOverrides(subject: string): Promise<LimitOverrides | undefined> {
    if (!this.cached.enabled) return this.overrides(subject);
    const hit = this.cached.get(subject);
    if (hit !== undefined) return hit ?? undefined;
    const generation = this.cached.generation;
    const row = await this.overrides(subject);
    this.cached.set(subject, row ?? null, generation);
    return row;
  }

  /** The smallest non-zero max_tokens cap among the subjects (0: none). */
  maxTokens(subjects: Subject[]): number {
    const caps = subjects.map((s) => s.limits.maxTokens).filter((n) => n > 0);
    return caps.length ? Math.min(...caps) : 0;
  }

  /**
   * Takes a request slot and reserves up to `tokens` of the daily quota (less when less
   * remains, but at least `minTokens`), or throws the 429.
   */
  async admit(
    caller: Caller,
    options: {
      tokens: number;
      minTokens: number;
      concurrent: boolean;
      /** From subjects(caller) when the caller read them already (saves the queries). */
      subjects?: Subject[];
      /** Subjects held besides the caller's own (a per-model quota). */
      also?: Subject[];
    },
  ): Promise<Admission> {
    const { subjects: known, also = [], ...wanted } = options;
    const subjects = [...(known ?? (await this.subjects(caller))), ...also];
    const now = this.clock();
    const result = await this.store.acquire({ subjects, now, ...wanted });
    if (!result.ok)
      throw limitError(result.limit, result.value, result.resetAt, now, result.subject);
    return {
      subjects,
      reserved: result.reserved,
      day: result.day,
      concurrent: options.concurrent,
      maxTokens: this.maxTokens(subjects),
      settled: false,
    };
  }

  /**
   * Charges the real usage instead of the reservation and frees the slot; idempotent.
   * Never throws: it runs when the answer has gone (or is going) to the client, whose usage
   * row must be written whatever the counters' store does. A settle the store refuses (Redis
   * unreachable) is reported and tried again every few seconds until it succeeds, so the
   * concurrency slot and the reservation are given back once the store is back.
   */
  async settle(admission: Admission, used: number): Promise<void> {
    if (admission.settled) return;
    admission.settled = true;
    const request: SettleRequest = {
      subjects: admission.subjects,
      reserved: admission.reserved,
      used,
      concurrent: admission.concurrent,
      day: admission.day,
    };
    try {
      await this.store.settle(request);
    } catch (err) {
      this.unsettled.push(request);
      // Past the bound the oldest is given up: its slot expires with its counter's TTL.
      if (this.unsettled.length > MAX_UNSETTLED) this.unsettled.shift();
      this.onSettleFailure(err, this.unsettled.length);
      this.scheduleSettleRetry();
    }
  }

  /** Settles still waiting for the store. */
  get unsettledCount(): number {
    return this.unsettled.length;
  }

  /** Stops retrying waiting settles (the app is closing). */
  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private scheduleSettleRetry(): void {
    if (this.retryTimer || this.retrying) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.retrySettles();
    }, SETTLE_RETRY_MS);
    this.retryTimer.unref();
  }

  /** Tries the waiting settles in order; stops at the first the store still refuses. */
  private async retrySettles(): Promise<void> {
    this.retrying = true;
    try {
      while (this.unsettled.length > 0) {
        await this.store.settle(this.unsettled[0] as SettleRequest);
        this.unsettled.shift();
      }
    } catch {
      // Still unreachable: the next round tries again.
    } finally {
      this.retrying = false;
    }
    if (this.unsettled.length > 0) this.scheduleSettleRetry();
  }

  /** Usage against each limit, for /api/user/usage. */
  async quota(caller: Caller) {
    const now = this.clock();
    const [user] = await this.subjects({ ...caller, apiKeyId: null });
    if (!user) throw new Error("no subject");
    const c = await this.store.counters(user.id, now);
    const l = user.limits;
    return {
      requestsPerMinute: meter(
        c.requestsThisMinute,
        l.requestsPerMinute,
        minuteStart(now) + MINUTE_MS,
      ),
      tokensPerDay: meter(c.tokensToday, l.tokensPerDay, dayStart(now) + DAY_MS),
      concurrentStreams: meter(c.concurrent, l.concurrentStreams, null),
      maxTokensPerRequest: l.maxTokens > 0 ? l.maxTokens : null,
    };
  }

  /** A subject's tokens today against its daily limit (a per-model quota's meter). */
  async tokenMeter(subject: Subject) {
    const now = this.clock();
    const c = await this.store.counters(subject.id, now);
    return meter(c.tokensToday, subject.limits.tokensPerDay, dayStart(now) + DAY_MS);
  }

  /** Applies an admin's changes (null resets one to the role default). */
  async setOverrides(userId: string, subject: string, patch: Partial<LimitOverrides>) {
    const current = (await this.overrides(subject)) ?? NO_OVERRIDES;
    const next = { ...current };
    for (const k of LIMIT_KEYS) {
      const v = patch[k];
      if (v !== undefined) next[k] = v;
    }
    await this.db.kysely
      .insertInto("limit_override")
      .values({ subject, userId, ...next, updatedAt: this.clock() })
      .onConflict((oc) => oc.column("subject").doUpdateSet({ ...next, updatedAt: this.clock() }))
      .execute();
    this.cached.clear();
    return next;
  }

  /**
   * An API key's own limits (checked on top of its user's): the admin's overrides, the
   * owner's, the effective key-level limits (the tighter of both; 0 = no key-level limit),
   * and the key's counters now.
   */
  async describeKey(apiKeyId: string, userId: string) {
    const [admin, owner, c] = await Promise.all([
      this.overrides(`key:${apiKeyId}`),
      this.overrides(`keyown:${apiKeyId}`),
      this.store.counters(`key:${apiKeyId}`, this.clock()),
    ]);
    return {
      apiKeyId,
      userId,
      overrides: admin ?? NO_OVERRIDES,
      ownerOverrides: owner ?? NO_OVERRIDES,
      effective: keyLimits(admin, owner) ?? NO_KEY_LIMITS,
      usage: {
        requestsThisMinute: c.requestsThisMinute,
        tokensToday: c.tokensToday,
        concurrent: c.concurrent,
      },
    };
  }

  /** An API key's own overrides (all null when it has none). */
  async describeKeyOverrides(apiKeyId: string): Promise<LimitOverrides> {
    return (await this.overrides(`key:${apiKeyId}`)) ?? NO_OVERRIDES;
  }

  /** Overrides and effective limits of a user, for the admin routes and CLI. */
  async describe(userId: string, role: Role) {
    const overrides = (await this.overrides(`user:${userId}`)) ?? NO_OVERRIDES;
    return { userId, overrides, effective: merge(this.defaults[role], overrides) };
  }
}

import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

interface Counter {
  failures: number;
  /** The last failure. */
  last: number;
  lockedUntil: number;
}

/** The throttle's thresholds and delays (see LoginThrottle). */
export interface ThrottleRules {
  /** Failures of one account from one client IP before that pair is slowed down. */
  maxPerPair: number;
  /** Failures from one client IP, whatever the accounts, before the IP is slowed down. */
  maxPerIp: number;
  /**
   * Failures of one account from every IP together before clients the account never
   * signed in from are slowed down for it (a guessing attack spread over many addresses).
   */
  maxPerAccount: number;
  /** Quiet time (no failure, no delay running) after which the count starts again. */
  windowMs: number;
  /** The first delay once over a limit; each further failure doubles it. */
  baseDelayMs: number;
  /** The longest delay. */
  maxDelayMs: number;
  /** How long an IP the account signed in from keeps counting as the owner's. */
  knownIpMs: number;
}

export interface LoginThrottleOptions extends Partial<ThrottleRules> {
  now?: () => number;
  /** Where the counters live (default: this process's memory). */
  store?: ThrottleStore;
}

/** What the throttle knows of one (account, IP) attempt: until when each key delays it. */
export interface ThrottleState {
  pair: number;
  ip: number;
  account: number;
  /** Until when the IP counts as one the account signed in from. */
  known: number;
}

/**
 * Where the counters live: `MemoryThrottleStore` (one gateway process) or
 * `RedisThrottleStore` (shared by every gateway on one REDIS_URL). Every method may reject
 * when the store is unreachable; the throttle's callers then refuse the check (fail closed).
 */
export interface ThrottleStore {
  read(account: string, ip: string, now: number): Promise<ThrottleState>;
  /** Counts one failure on the pair's, the IP's and the account's counters. */
  fail(account: string, ip: string, now: number, rules: ThrottleRules): Promise<void>;
  /** Clears the pair's counter; the IP counts as the account's for `rules.knownIpMs`. */
  succeed(account: string, ip: string, now: number, rules: ThrottleRules): Promise<void>;
}

/** Entries kept per map before expired ones are dropped (and, if still over, the oldest). */
const MAX_ENTRIES = 50_000;

const pairKey = (account: string, ip: string) => `${account}\n${ip}`;

/** No failure and no delay for `windowMs`: the count is forgotten. */
const quiet = (c: Counter, t: number, windowMs: number) =>
  t - Math.max(c.last, c.lockedUntil) > windowMs;

/** Makes room in `map`: drops what `expired` says, then the oldest entries while still full. */
function makeRoom<V>(map: Map<string, V>, expired: (value: V) => boolean): void {
  if (map.size < MAX_ENTRIES) return;
  for (const [key, value] of map) if (expired(value)) map.delete(key);
  for (const key of map.keys()) {
    if (map.size < MAX_ENTRIES) break;
    map.delete(key);
  }
}

/** The counters in this process's memory, each map bounded to MAX_ENTRIES. */
export class MemoryThrottleStore implements ThrottleStore {
  private readonly pairs = new Map<string, Counter>();
  private readonly ips = new Map<string, Counter>();
  private readonly accounts = new Map<string, Counter>();
  /** `account \n ip` → until when that IP counts as the owner's. */
  private readonly known = new Map<string, number>();

  async read(account: string, ip: string): Promise<ThrottleState> {
    const pair = pairKey(account, ip);
    return {
      pair: this.pairs.get(pair)?.lockedUntil ?? 0,
      ip: this.ips.get(ip)?.lockedUntil ?? 0,
      account: this.accounts.get(account)?.lockedUntil ?? 0,
      known: this.known.get(pair) ?? 0,
    };
  }

  async fail(account: string, ip: string, t: number, rules: ThrottleRules): Promise<void> {
    this.bump(this.pairs, pairKey(account, ip), rules.maxPerPair, t, rules);
    this.bump(this.ips, ip, rules.maxPerIp, t, rules);
    this.bump(this.accounts, account, rules.maxPerAccount, t, rules);
  }

  async succeed(account: string, ip: string, t: number, rules: ThrottleRules): Promise<void> {
    const pair = pairKey(account, ip);
    this.pairs.delete(pair);
    makeRoom(this.known, (until) => until <= t);
    // Re-inserted: the map's order stays oldest first.
    this.known.delete(pair);
    this.known.set(pair, t + rules.knownIpMs);
  }

  private bump(
    map: Map<string, Counter>,
    key: string,
    max: number,
    t: number,
    rules: ThrottleRules,
  ): void {
    makeRoom(map, (c) => quiet(c, t, rules.windowMs));
    let c = map.get(key);
    if (!c || quiet(c, t, rules.windowMs)) {
      c = { failures: 0, last: t, lockedUntil: 0 };
      map.set(key, c);
    }
    c.failures += 1;
    c.last = t;
    if (c.failures >= max) {
      const delay = rules.baseDelayMs * 2 ** Math.min(30, c.failures - max);
      c.lockedUntil = t + Math.min(rules.maxDelayMs, delay);
    }
  }
}

/**
 * KEYS: the pair's, the IP's and the account's counter (hashes f = failures, l = last
 * failure, u = delayed until). ARGV: now, window, base delay, max delay, then the three
 * thresholds. The same arithmetic as MemoryThrottleStore.bump, atomic in Redis; a counter
 * expires once it has been quiet for the window (the memory store's "forgotten").
 */
const FAIL = `
local now, window, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, 3 do
  local max = tonumber(ARGV[4 + i])
  local v = redis.call('HMGET', KEYS[i], 'f', 'l', 'u')
  local f, l, u = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if now - math.max(l, u) > window then f, u = 0, 0 end
  f = f + 1
  if f >= max then u = now + math.min(cap, base * 2 ^ math.min(30, f - max)) end
  redis.call('HSET', KEYS[i], 'f', f, 'l', now, 'u', string.format('%d', u))
  redis.call('PEXPIRE', KEYS[i], math.max(now, u) - now + window + 1000)
end
return 1
`;

/** Counters in Redis, shared by every gateway instance on the same REDIS_URL. */
export class RedisThrottleStore implements ThrottleStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "gw:throttle:",
  ) {}

  /** Keys hold a digest, not the email and address themselves (bounded, nothing readable). */
  private key(kind: string, value: string): string {
    return `${this.prefix}${kind}:${createHash("sha256").update(value).digest("base64url")}`;
  }

  private keys(account: string, ip: string) {
    const pair = pairKey(account, ip);
    return {
      pair: this.key("pair", pair),
      ip: this.key("ip", ip),
      account: this.key("account", account),
      known: this.key("known", pair),
    };
  }

  async read(account: string, ip: string): Promise<ThrottleState> {
    const k = this.keys(account, ip);
    const replies = await this.redis
      .pipeline()
      .hget(k.pair, "u")
      .hget(k.ip, "u")
      .hget(k.account, "u")
      .get(k.known)
      .exec();
    const [pair, ipUntil, accountUntil, known] = (replies ?? []).map(([err, value]) => {
      if (err) throw err;
      return Number(value ?? 0) || 0;
    });
    return { pair: pair ?? 0, ip: ipUntil ?? 0, account: accountUntil ?? 0, known: known ?? 0 };
  }

  async fail(account: string, ip: string, now: number, rules: ThrottleRules): Promise<void> {
    const k = this.keys(account, ip);
    await this.redis.eval(
      FAIL,
      3,
      k.pair,
      k.ip,
      k.account,
      now,
      rules.windowMs,
      rules.baseDelayMs,
      rules.maxDelayMs,
      rules.maxPerPair,
      rules.maxPerIp,
      rules.maxPerAccount,
    );
  }

  async succeed(account: string, ip: string, now: number, rules: ThrottleRules): Promise<void> {
    const k = this.keys(account, ip);
    await this.redis
      .multi()
      .del(k.pair)
      .set(k.known, String(now + rules.knownIpMs), "PX", rules.knownIpMs)
      .exec();
  }
}

/** The answer to a password check the throttle holds back (429, or 503 when it cannot tell). */
export interface Refusal {
  status: 429 | 503;
  code: string;
  message: string;
  headers: Record<string, string>;
}

export const TOO_MANY_ATTEMPTS = {
  code: "TOO_MANY_ATTEMPTS",
  message: "Too many wrong passwords; try again later",
};

/** Seconds a client waits before trying again when the counters' store is unreachable. */
const UNAVAILABLE_RETRY_S = 5;

/**
 * Brute-force protection for every check of a password (sign-in, password change, account
 * deletion…), shaped so an attacker cannot use it to lock the real owner out:
 *
 * - per (account, client IP) pair: after `maxPerPair` failures each further failure from
 *   that IP delays the next try for that account, doubling up to `maxDelayMs`
 *   (progressive delay, OWASP's advice over hard lockouts). Another IP is not affected;
 * - per client IP: the same beyond `maxPerIp` failures on any accounts (password spraying);
 * - per account: beyond `maxPerAccount` failures from all IPs together, the delay applies
 *   to every IP the account has not signed in from within `knownIpMs`; the owner's known
 *   addresses still get in (the device-cookie idea of OWASP, keyed by IP).
 *
 * Unknown and known accounts are counted alike, so the delays reveal nothing about which
 * exist. A success clears only its own pair. The counters live in a ThrottleStore: process
 * memory, or Redis shared by every gateway instance (then every method rejects while Redis
 * is unreachable, and callers refuse the password check: fail closed).
 */
export class LoginThrottle {
  private readonly rules: ThrottleRules;
  private readonly now: () => number;
  private readonly store: ThrottleStore;

  constructor(options: LoginThrottleOptions = {}) {
    this.rules = {
      maxPerPair: options.maxPerPair ?? 5,
      maxPerIp: options.maxPerIp ?? 20,
      maxPerAccount: options.maxPerAccount ?? 20,
      windowMs: options.windowMs ?? 15 * 60_000,
      baseDelayMs: options.baseDelayMs ?? 30_000,
      maxDelayMs: options.maxDelayMs ?? 15 * 60_000,
      knownIpMs: options.knownIpMs ?? 30 * 24 * 3_600_000,
    };
    this.now = options.now ?? Date.now;
    this.store = options.store ?? new MemoryThrottleStore();
  }

  /** Seconds `ip` must wait before trying `account` again, 0 when it may try now. */
  async retryAfter(account: string, ip: string): Promise<number> {
    const t = this.now();
    const s = await this.store.read(account, ip, t);
    const until = Math.max(s.pair, s.ip, s.known > t ? 0 : s.account);
    return until > t ? Math.ceil((until - t) / 1000) : 0;
  }

  /** Counts a wrong password for `account` from `ip`. */
  fail(account: string, ip: string): Promise<void> {
    return this.store.fail(account, ip, this.now(), this.rules);
  }

  /** The right password: that pair starts afresh and `ip` counts as the owner's from now on. */
  succeed(account: string, ip: string): Promise<void> {
    return this.store.succeed(account, ip, this.now(), this.rules);
  }

  /**
   * Why `ip` may not have a password of `account` checked now: still delayed (429 with
   * Retry-After), or the store is unreachable (503: fail closed, an outage must not lift
   * the throttle); null when it may. Every password check asks this first.
   */
  async refusal(account: string, ip: string): Promise<Refusal | null> {
    let wait: number;
    try {
      wait = await this.retryAfter(account, ip);
    } catch {
      return {
        status: 503,
        code: "THROTTLE_UNAVAILABLE",
        message: "Password checks are unavailable for a moment; try again shortly",
        headers: { "retry-after": String(UNAVAILABLE_RETRY_S), "cache-control": "no-store" },
      };
    }
    if (wait === 0) return null;
    return {
      status: 429,
      ...TOO_MANY_ATTEMPTS,
      headers: { "retry-after": String(wait), "cache-control": "no-store" },
    };
  }

  /**
   * Counts a checked password (right or wrong). Never throws: the answer is decided; if the
   * store just became unreachable this one count is lost, and `refusal` holds every further
   * check back until it is reachable again.
   */
  async record(account: string, ip: string, ok: boolean): Promise<void> {
    try {
      await (ok ? this.succeed(account, ip) : this.fail(account, ip));
    } catch {
      // See above: refusal() fails closed meanwhile.
    }
  }
}

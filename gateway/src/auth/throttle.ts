interface Counter {
  failures: number;
  /** The last failure. */
  last: number;
  lockedUntil: number;
}

export interface LoginThrottleOptions {
  /** Failures of one account from one client IP before that pair is slowed down. */
  maxPerPair?: number;
  /** Failures from one client IP, whatever the accounts, before the IP is slowed down. */
  maxPerIp?: number;
  /**
   * Failures of one account from every IP together before clients the account never
   * signed in from are slowed down for it (a guessing attack spread over many addresses).
   */
  maxPerAccount?: number;
  /** Quiet time (no failure, no delay running) after which the count starts again. */
  windowMs?: number;
  /** The first delay once over a limit; each further failure doubles it. */
  baseDelayMs?: number;
  /** The longest delay. */
  maxDelayMs?: number;
  /** How long an IP the account signed in from keeps counting as the owner's. */
  knownIpMs?: number;
  now?: () => number;
}

/** Entries kept per map before expired ones are dropped (and, if still over, the oldest). */
const MAX_ENTRIES = 50_000;

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
 * exist. A success clears only its own pair. In process memory: one gateway process.
 */
export class LoginThrottle {
  private readonly pairs = new Map<string, Counter>();
  private readonly ips = new Map<string, Counter>();
  private readonly accounts = new Map<string, Counter>();
  /** `account \n ip` → until when that IP counts as the owner's. */
  private readonly known = new Map<string, number>();
  private readonly maxPerPair: number;
  private readonly maxPerIp: number;
  private readonly maxPerAccount: number;
  private readonly windowMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly knownIpMs: number;
  private readonly now: () => number;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxPerPair = options.maxPerPair ?? 5;
    this.maxPerIp = options.maxPerIp ?? 20;
    this.maxPerAccount = options.maxPerAccount ?? 20;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.baseDelayMs = options.baseDelayMs ?? 30_000;
    this.maxDelayMs = options.maxDelayMs ?? 15 * 60_000;
    this.knownIpMs = options.knownIpMs ?? 30 * 24 * 3_600_000;
    this.now = options.now ?? Date.now;
  }

  /** Seconds `ip` must wait before trying `account` again, 0 when it may try now. */
  retryAfter(account: string, ip: string): number {
    const t = this.now();
    const pair = pairKey(account, ip);
    const knownUntil = this.known.get(pair) ?? 0;
    const until = Math.max(
      this.pairs.get(pair)?.lockedUntil ?? 0,
      this.ips.get(ip)?.lockedUntil ?? 0,
      knownUntil > t ? 0 : (this.accounts.get(account)?.lockedUntil ?? 0),
    );
    return until > t ? Math.ceil((until - t) / 1000) : 0;
  }

  /** Counts a wrong password for `account` from `ip`. */
  fail(account: string, ip: string): void {
    this.bump(this.pairs, pairKey(account, ip), this.maxPerPair);
    this.bump(this.ips, ip, this.maxPerIp);
    this.bump(this.accounts, account, this.maxPerAccount);
  }

  /** The right password: that pair starts afresh and `ip` counts as the owner's from now on. */
  succeed(account: string, ip: string): void {
    const t = this.now();
    const pair = pairKey(account, ip);
    this.pairs.delete(pair);
    if (this.known.size >= MAX_ENTRIES) {
      for (const [key, until] of this.known) if (until <= t) this.known.delete(key);
      const oldest = this.known.keys().next();
      if (this.known.size >= MAX_ENTRIES && !oldest.done) this.known.delete(oldest.value);
    }
    this.known.delete(pair);
    this.known.set(pair, t + this.knownIpMs);
  }

  private bump(map: Map<string, Counter>, key: string, max: number): void {
    const t = this.now();
    if (map.size >= MAX_ENTRIES) this.prune(map, t);
    let c = map.get(key);
    if (!c || this.quiet(c, t)) {
      c = { failures: 0, last: t, lockedUntil: 0 };
      map.set(key, c);
    }
    c.failures += 1;
    c.last = t;
    if (c.failures >= max) {
      const delay = this.baseDelayMs * 2 ** Math.min(30, c.failures - max);
      c.lockedUntil = t + Math.min(this.maxDelayMs, delay);
    }
  }

  /** No failure and no delay for `windowMs`: the count is forgotten. */
  private quiet(c: Counter, t: number): boolean {
    return t - Math.max(c.last, c.lockedUntil) > this.windowMs;
  }

  private prune(map: Map<string, Counter>, t: number): void {
    for (const [key, c] of map) {
      if (this.quiet(c, t)) map.delete(key);
    }
    while (map.size >= MAX_ENTRIES) {
      const oldest = map.keys().next();
      if (oldest.done) break;
      map.delete(oldest.value);
    }
  }
}

const pairKey = (account: string, ip: string) => `${account}\n${ip}`;

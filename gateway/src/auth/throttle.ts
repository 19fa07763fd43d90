interface Counter {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

export interface LoginThrottleOptions {
  /** Failed sign-ins per account (email) before it is locked. */
  maxPerAccount?: number;
  /** Failed sign-ins per client IP before it is locked. */
  maxPerIp?: number;
  windowMs?: number;
  lockMs?: number;
  now?: () => number;
}

/**
 * Brute-force protection for password sign-in: counts failures per account and per IP
 * in a sliding window and locks either for a while once over its limit. Unknown and
 * known emails are counted alike, so the lock reveals nothing about which exist.
 * In memory: one gateway process (a shared store comes with horizontal scaling).
 */
export class LoginThrottle {
  private readonly accounts = new Map<string, Counter>();
  private readonly ips = new Map<string, Counter>();
  private readonly maxPerAccount: number;
  private readonly maxPerIp: number;
  private readonly windowMs: number;
  private readonly lockMs: number;
  private readonly now: () => number;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxPerAccount = options.maxPerAccount ?? 5;
    this.maxPerIp = options.maxPerIp ?? 20;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.lockMs = options.lockMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Seconds to wait when the account or the IP is locked, else 0. */
  retryAfter(email: string, ip: string): number {
    const t = this.now();
    const until = Math.max(
      this.accounts.get(email)?.lockedUntil ?? 0,
      this.ips.get(ip)?.lockedUntil ?? 0,
    );
    return until > t ? Math.ceil((until - t) / 1000) : 0;
  }

  fail(email: string, ip: string): void {
    this.bump(this.accounts, email, this.maxPerAccount);
    this.bump(this.ips, ip, this.maxPerIp);
  }

  succeed(email: string): void {
    this.accounts.delete(email);
  }

  private bump(map: Map<string, Counter>, key: string, max: number): void {
    const t = this.now();
    if (map.size > 50_000) this.prune(map, t);
    let c = map.get(key);
    if (!c || t - c.windowStart > this.windowMs) {
      c = { failures: 0, windowStart: t, lockedUntil: 0 };
      map.set(key, c);
    }
    c.failures += 1;
    if (c.failures >= max) c.lockedUntil = t + this.lockMs;
  }

  private prune(map: Map<string, Counter>, t: number): void {
    for (const [key, c] of map) {
      if (c.lockedUntil < t && t - c.windowStart > this.windowMs) map.delete(key);
    }
  }
}

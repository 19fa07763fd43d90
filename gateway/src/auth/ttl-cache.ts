/**
 * A small in-process cache for what the hot path would otherwise read from the database on
 * every request (a verified API key with its user, a subject's limit overrides).
 *
 * Entries live at most `ttlMs` (and never past their own `until`). `clear()` drops every
 * entry and voids the lookups still in flight: a value read before the change cannot be
 * stored after it (each `set` carries the generation its lookup started in). Changes made
 * in this process call `clear()`; the TTL bounds the others (the admin CLI, another gateway
 * instance). `ttlMs` 0 disables it.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private gen = 0;

  constructor(
    readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** Pass to `set`: the generation a lookup starting now belongs to. */
  get generation(): number {
    return this.gen;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.clock() >= entry.until) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value` unless the cache was cleared since `generation`; `until` caps its life. */
  set(key: string, value: V, generation: number, until = Number.POSITIVE_INFINITY): void {
    if (!this.enabled || generation !== this.gen) return;
    const now = this.clock();
    if (until <= now) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      // Oldest first (a Map iterates in insertion order).
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, until: Math.min(until, now + this.ttlMs) });
  }

  /** Forgets everything, including what lookups in flight would store. */
  clear(): void {
    this.entries.clear();
    this.gen += 1;
  }

  get size(): number {
    return this.entries.size;
  }
}

import type { Role } from "../schemas.js";
import {
  type ModelAccessStore,
  type ModelEntry,
  type ModelLimit,
  type ModelRule,
  type ModelSubject,
  modelKey,
} from "./model-access-store.js";

/** Who asks: a request's principal (`user`) or a call's caller (`userId`, `role`). */
export type ModelUser = { user: { id: string; role: Role } } | { userId: string; role: Role };

function idAndRole(who: ModelUser): { id: string; role: Role } {
  return "user" in who ? who.user : { id: who.userId, role: who.role };
}

/** One model's entries by subject (`role:<r>`, `user:<id>`), each with the name as written. */
type ByModel<V> = Map<string, { model: string; value: V }>;

/** All rules and limits, indexed for the hot path. */
interface Snapshot {
  rules: Map<string, ByModel<boolean>>;
  limits: Map<string, ByModel<number>>;
}

function index<V>(entries: ModelEntry<V>[]): Map<string, ByModel<V>> {
  const out = new Map<string, ByModel<V>>();
  for (const e of entries) {
    const key = modelKey(e.model);
    let m = out.get(key);
    if (!m) {
      m = new Map();
      out.set(key, m);
    }
    const subject = e.userId !== null ? `user:${e.userId}` : `role:${e.role}`;
    m.set(subject, { model: e.model, value: e.value });
  }
  return out;
}

/** The user's own entry, else their role's, else undefined. */
function pick<V>(m: ByModel<V> | undefined, who: ModelUser) {
  if (!m) return undefined;
  const { id, role } = idAndRole(who);
  return m.get(`user:${id}`) ?? m.get(`role:${role}`);
}

/** A per-model daily token limit that applies to someone. */
export interface AppliedModelLimit {
  /** The public model name as the admin wrote it. */
  model: string;
  /** Its lower-case key (the counters' identity). */
  key: string;
  tokensPerDay: number;
}

/**
 * Who may use which model, and per-model daily token limits, for a role or one user. A
 * user's own rule beats their role's; no rule at all means allowed (so a gateway nobody
 * configured serves every model to everyone). Model names are matched trimmed and
 * case-insensitively; callers resolve aliases and "default" first (see ModelNames).
 *
 * Every rule and limit is held in memory (the tables are small and read on every LLM
 * request): changes made here take effect at once, the TTL bounds those of another gateway
 * instance or of bin/admin.
 */
export class ModelAccess {
  private snapshot: { value: Snapshot; until: number } | null = null;
  private loading: Promise<Snapshot> | null = null;
  /** Bumped by every change: a read that started before it is not kept. */
  private generation = 0;

  /** @param ttlMs how long a read of the rules is reused (0: read them on every check). */
  constructor(
    readonly store: ModelAccessStore,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether `who` may use `model` (a public model name). */
  async allowed(who: ModelUser, model: string): Promise<boolean> {
    const snap = await this.current();
    return pick(snap.rules.get(modelKey(model)), who)?.value ?? true;
  }

  /** The models of `ids` that `who` may use, in their order. */
  async filter<T extends string>(who: ModelUser, ids: readonly T[]): Promise<T[]> {
    const snap = await this.current();
    if (snap.rules.size === 0) return [...ids];
    return ids.filter((id) => pick(snap.rules.get(modelKey(id)), who)?.value ?? true);
  }

  /** Whether any rule or limit exists (none: nothing to check, no name to resolve). */
  async active(): Promise<boolean> {
    const snap = await this.current();
    return snap.rules.size > 0 || snap.limits.size > 0;
  }

  /** The daily token limit of `model` for `who`, if one applies (0 = none). */
  async tokenLimit(who: ModelUser, model: string): Promise<AppliedModelLimit | null> {
    const snap = await this.current();
    const key = modelKey(model);
    const limit = pick(snap.limits.get(key), who);
    if (!limit?.value) return null;
    return { model: limit.model, key, tokensPerDay: limit.value };
  }

  /** Every per-model limit that applies to `who` (for their quota page). */
  async tokenLimits(who: ModelUser): Promise<AppliedModelLimit[]> {
    const snap = await this.current();
    const out: AppliedModelLimit[] = [];
    for (const [key, m] of snap.limits) {
      const limit = pick(m, who);
      if (limit?.value) out.push({ model: limit.model, key, tokensPerDay: limit.value });
    }
    return out;
  }

  /** Every rule and limit, for the admin API and bin/admin. */
  async list(): Promise<{ rules: ModelRule[]; limits: ModelLimit[] }> {
    const [rules, limits] = await Promise.all([this.store.rules(), this.store.limits()]);
    return { rules, limits };
  }

  /** Allows or denies `model` to a role or user (replacing their rule for it); the rule's id. */
  async setRule(model: string, subject: ModelSubject, allow: boolean): Promise<string> {
    return this.changed(this.store.setRule(model, subject, allow));
  }

  /** Sets a role's or user's daily tokens of `model` (0 = no limit); the limit's id. */
  async setLimit(model: string, subject: ModelSubject, tokensPerDay: number): Promise<string> {
    return this.changed(this.store.setLimit(model, subject, tokensPerDay));
  }

  /** Deletes a rule (false: no such rule). */
  async deleteRule(id: string): Promise<boolean> {
    return this.changed(this.store.deleteRule(id));
  }

  /** Deletes a limit (false: no such limit). */
  async deleteLimit(id: string): Promise<boolean> {
    return this.changed(this.store.deleteLimit(id));
  }

  /** Waits for a write, then forgets what was read before it (here, at once). */
  private async changed<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.generation += 1;
      this.snapshot = null;
      // A read in flight started before the write: later checks read again.
      this.loading = null;
    }
  }

  /** The rules and limits, read again once the TTL has passed (one read at a time). */
  private async current(): Promise<Snapshot> {
    const now = this.clock();
    if (this.snapshot && now < this.snapshot.until) return this.snapshot.value;
    if (this.loading) return this.loading;
    const generation = this.generation;
    const stale = this.snapshot?.value;
    const read = (async () => {
      let rules: ModelRule[];
      let limits: ModelLimit[];
      try {
        [rules, limits] = await Promise.all([this.store.rules(), this.store.limits()]);
      } catch (err) {
        // The database is down: the rules read moments ago still hold, as cached credentials
        // do (the calls they let through are billed from the spool); none read yet → refuse.
        if (stale) return stale;
        throw err;
      }
      const value = { rules: index(rules), limits: index(limits) };
      if (this.ttlMs > 0 && generation === this.generation) {
        this.snapshot = { value, until: this.clock() + this.ttlMs };
      }
      return value;
    })();
    this.loading = read;
    try {
      return await read;
    } finally {
      if (this.loading === read) this.loading = null;
    }
  }
}

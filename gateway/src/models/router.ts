import { fallbackChain, type RoutingConfig } from "../config/routing-file.js";
import { HttpError } from "../errors.js";
import { type Balancer, noServerError } from "../services/balancer.js";
import type { LlmCall } from "../services/llm-client.js";
import type { ModelRoutes, Pool, Route, Routed, RoutedPrepare } from "../services/routing.js";

export type { Pool, Route, Routed };

type Snapshot = ReturnType<Balancer["snapshot"]>;
type ServerView = Snapshot["servers"][number];

/** Errors that mean the whole pool is down (not busy, not the client's fault). */
const POOL_DOWN = new Set(["LLM_UNAVAILABLE", "UPSTREAM_ERROR", "UPSTREAM_TIMEOUT"]);

/** Longest requested model name quoted back in a 404. */
const MAX_QUOTED = 128;

const HEALTH_RANK: Record<string, number> = { healthy: 3, unknown: 2, unhealthy: 1, ejected: 0 };

/**
 * Maps a request's `model` to its pool and fallbacks, and sends calls through them: the
 * model's pool first; when the whole pool is down, the next model of its fallback chain.
 * Without a routing file there is one pool and every name goes to it unchanged.
 */
export class ModelRouter implements ModelRoutes {
  private readonly byName = new Map<string, Pool>();
  /** Lower-case name or alias → canonical name. */
  private readonly names = new Map<string, string>();
  private readonly chains = new Map<string, Pool[]>();

  constructor(
    readonly pools: readonly Pool[],
    private readonly config: RoutingConfig | undefined,
  ) {
    for (const pool of pools) if (pool.name !== null) this.byName.set(pool.name, pool);
    for (const m of config?.models ?? []) {
      for (const n of [m.name, ...m.aliases]) this.names.set(n.toLowerCase(), m.name);
      const chain = fallbackChain(config as RoutingConfig, m.name);
      this.chains.set(
        m.name,
        chain.map((n) => this.byName.get(n) as Pool),
      );
    }
  }

  /** Whether a routing file defines the models (else: one pool, names as sent). */
  get routing(): boolean {
    return this.config !== undefined;
  }

  /** The canonical name of the default model (null without a routing file). */
  get defaultModel(): string | null {
    return this.config?.defaultModel ?? null;
  }

  /** The pool of the default model (the only one without a routing file). */
  get defaultPool(): Pool {
    const name = this.defaultModel;
    return (name === null ? undefined : this.byName.get(name)) ?? (this.pools[0] as Pool);
  }

  /**
   * The route for a request's `model`: absent or `"default"` is the default model; a name
   * or alias matches exactly, or else ignoring case. Unknown: 404 naming it, no upstream called.
   */
  resolve(model: unknown): Route {
    if (!this.config) return { name: null, chain: [this.defaultPool] };
    const asked = typeof model === "string" && model !== "default" ? model : this.defaultModel;
    const name =
      asked === null
        ? undefined
        : this.byName.has(asked)
          ? asked
          : this.names.get(asked.toLowerCase());
    const chain = name === undefined ? undefined : this.chains.get(name);
    if (name === undefined || !chain) throw modelNotFound(String(asked));
    return { name, chain };
  }

  /**
   * The catalog name a request's `model` means (ModelNames, for the access rules); throws
   * 404 for an unknown one. Without a routing file: the name as sent.
   */
  async publicName(sent: string | undefined): Promise<string> {
    return this.resolve(sent).name ?? sent ?? "";
  }

  /** The canonical name of `model` if it is one of the catalog's names or aliases. */
  canonical(model: string): string | undefined {
    return this.byName.has(model) ? model : this.names.get(model.toLowerCase());
  }

  /**
   * Sends `call` to the route's pool; when that whole pool is down (no upstream reachable,
   * every one failed), to the next pool of the chain. Nothing has reached the client
   * before an answer is returned, so moving on is safe.
   */
  async send<T>(route: Route, call: LlmCall, prepare: RoutedPrepare<T>): Promise<Routed<T>> {
    for (const [i, pool] of route.chain.entries()) {
      const more = i < route.chain.length - 1;
      try {
        const up = await pool.llm.send({ ...call, exclude: new Set() }, (res) =>
          prepare(res, pool.llm),
        );
        if (more && up.res.status >= 500) {
          // The last upstream of the pool failed too: the pool is down for this call.
          up.release(true);
          continue;
        }
        return Object.assign(up, { model: pool.name });
      } catch (err) {
        if (!more || call.signal.aborted || !(err instanceof HttpError) || !POOL_DOWN.has(err.code))
          throw err;
      }
    }
    throw noServerError(); // an empty chain: never built
  }

  /** Starts every pool's health checks. */
  start(): void {
    for (const p of this.pools) p.balancer.start();
  }

  stop(): void {
    for (const p of this.pools) p.balancer.stop();
  }

  /** Resolves once every pool's first round of checks is done. */
  async checked(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.balancer.checked()));
  }

  /** Runs one round of health checks in every pool now. */
  async checkAll(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.balancer.checkAll()));
  }

  /**
   * Every upstream once (one listed in several pools: its best state, its requests in flight
   * summed), and the queues together: for /api/admin/servers, /health/ready and /metrics.
   */
  snapshot(): Snapshot {
    const servers = new Map<string, ServerView>();
    let waiting = 0;
    const first = this.pools[0]?.balancer.snapshot();
    for (const pool of this.pools) {
      const snap = pool === this.pools[0] && first ? first : pool.balancer.snapshot();
      waiting += snap.queue.waiting;
      for (const s of snap.servers) {
        const seen = servers.get(s.url);
        if (!seen) {
          servers.set(s.url, { ...s });
          continue;
        }
        seen.outstanding += s.outstanding;
        seen.requests += s.requests;
        seen.failures += s.failures;
        if ((HEALTH_RANK[s.state] ?? 0) > (HEALTH_RANK[seen.state] ?? 0)) seen.state = s.state;
      }
    }
    const queue = first?.queue ?? { waiting: 0, max: 0, timeoutMs: 0 };
    return { servers: [...servers.values()], queue: { ...queue, waiting } };
  }
}

/** 404 for a model the catalog does not have (the name quoted, bounded). */
export function modelNotFound(model: string): HttpError {
  const quoted = model.length > MAX_QUOTED ? `${model.slice(0, MAX_QUOTED)}…` : model;
  return new HttpError(
    404,
    "MODEL_NOT_FOUND",
    `The model "${quoted}" does not exist; GET /v1/models lists the models you may use`,
  );
}

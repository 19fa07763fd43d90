import { type Dispatcher, fetch, getGlobalDispatcher } from "undici";
import type { BalancerConfig } from "../config.js";
import { HttpError } from "../errors.js";
import { type PrefixCacheReport, readPrefixCache } from "./prefix-cache.js";
import { authorization, healthPath, llmServerTarget, type UpstreamTarget } from "./upstream.js";

export type ServerHealth = "unknown" | "healthy" | "unhealthy" | "ejected";

/** A model's state as an llm-server reports it in `/health/ready` (`models: [{id, state}]`). */
export type ReportedModels = ReadonlyMap<string, string>;

interface Server {
  url: string;
  target: UpstreamTarget;
  state: ServerHealth;
  /** Requests this gateway has in flight on the server. */
  outstanding: number;
  /** Load reported by the last check: running and queued sequences, and max_running. */
  running: number | null;
  queued: number | null;
  maxRunning: number | null;
  /** Load the server had at the last check that was not ours (other gateways, direct calls). */
  external: number;
  consecutiveFailures: number;
  passedChecks: number;
  lastCheckAt: number | null;
  lastError: string | null;
  requests: number;
  failures: number;
  /** Health checks in a row the server did not answer at all (timeout, refused). */
  silentChecks: number;
  /** Smooth weighted round robin's running score (see `weighted`). */
  current: number;
  /** Told when the server is silent (see Lease.onDown). */
  downWatchers: Set<() => void>;
  /** The models an llm-server reported at its last check, by id (empty: none reported). */
  models: ReportedModels;
  /** Their prefix caches at that check, by model id (loaded models of a recent llm-server). */
  prefixCaches: ReadonlyMap<string, PrefixCacheReport>;
}

export interface Lease {
  url: string;
  /** The upstream: its kind, model name, credentials and timeout. */
  target: UpstreamTarget;
  /**
   * Whether the server reported `model` loaded at its last check (true when it reported
   * nothing about it: an OpenAI server, an older llm-server, an alias).
   */
  loaded(model: string | undefined): boolean;
  /** Frees the slot; `failed` counts toward passive ejection. Idempotent. */
  release(failed: boolean): void;
  /**
   * Calls `abort` when the server left SILENT_CHECKS health checks in a row unanswered while
   * another server is usable (a frozen process answers neither its checks nor the request;
   * one slow probe on a loaded machine, or a draining server's 503, is no reason); until the
   * returned function is called or the lease is released.
   */
  onDown(abort: () => void): () => void;
}

interface Waiter {
  exclude: ReadonlySet<string>;
  resolve(lease: Lease): void;
  reject(err: Error): void;
}

/** Unanswered health checks in a row after which calls waiting on a server move on. */
const SILENT_CHECKS = 2;

/**
 * Smooth weighted round robin (nginx's): each candidate gains its weight, the highest is
 * chosen and pays back the total. Weights 3 and 1 give A A B A, A A B A…
 */
function weighted(candidates: Server[]): Server {
  let total = 0;
  let chosen = candidates[0] as Server;
  for (const s of candidates) {
    s.current += s.target.weight;
    total += s.target.weight;
    if (s.current > chosen.current) chosen = s;
  }
  chosen.current -= total;
  return chosen;
}

export function noServerError(): HttpError {
  return new HttpError(503, "LLM_UNAVAILABLE", "No model server is reachable", {
    "retry-after": "5",
  });
}

/**
 * Chooses the llm-server for each request: the one with the fewest outstanding requests
 * relative to its capacity (its reported `max_running`), counting the load it reported at
 * the last active check. Servers failing `ejectAfterFailures` times in a row are ejected
 * until `readmitAfterChecks` checks pass; the last available server is never ejected.
 * When every server is saturated, requests wait in a bounded FIFO queue.
 */
export class Balancer {
  private readonly servers: Server[];
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private firstCheck: Promise<void> = Promise.resolve();
  private turn = 0;

  constructor(
    /** The pool's upstreams (a URL: an llm-server, the client's model sent as is). */
    upstreams: readonly (string | UpstreamTarget)[],
    private readonly config: BalancerConfig,
    private readonly probeTimeoutMs = 1000,
    /** The connection pool of the probes (TLS settings of https:// servers); undici's global one when unset. */
    private readonly dispatcher: Dispatcher = getGlobalDispatcher(),
  ) {
    const targets = upstreams.map((u) => (typeof u === "string" ? llmServerTarget(u) : u));
    this.servers = targets.map((target) => ({
      url: target.url,
      target,
      state: "unknown",
      outstanding: 0,
      running: null,
      queued: null,
      maxRunning: null,
      external: 0,
      consecutiveFailures: 0,
      passedChecks: 0,
      lastCheckAt: null,
      lastError: null,
      requests: 0,
      failures: 0,
      silentChecks: 0,
      current: 0,
      downWatchers: new Set(),
      models: new Map(),
      prefixCaches: new Map(),
    }));
  }

  get size(): number {
    return this.servers.length;
  }

  /** Starts the periodic active health checks (the first one at once). */
  start(): void {
    if (this.timer) return;
    this.firstCheck = this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.config.healthIntervalMs);
    this.timer.unref();
  }

  /** Resolves once the first round of checks after `start` is done (at once before it). */
  checked(): Promise<void> {
    return this.firstCheck;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.queue.splice(0)) w.reject(noServerError());
  }

  private capacity(s: Server): number {
    if (this.config.maxOutstanding > 0) return this.config.maxOutstanding;
    return s.maxRunning ? 2 * s.maxRunning : 32;
  }

  /** Load relative to capacity and weight (an upstream of weight 2 takes twice the load). */
  private load(s: Server): number {
    return (s.outstanding + s.external) / (this.capacity(s) * s.target.weight);
  }

  /** The best unsaturated server not in `exclude`, or null when all candidates are full. */
  private pick(exclude: ReadonlySet<string>): Server | null | "none" {
    const open = this.servers.filter((s) => !exclude.has(s.url));
    if (open.length === 0) return "none";
    const usable = open.filter((s) => s.state === "healthy" || s.state === "unknown");
    // Fail open: when no server looks usable, try the others rather than refuse.
    const candidates = usable.length > 0 ? usable : open;
    const free = candidates.filter((s) => s.outstanding + s.external < this.capacity(s));
    if (free.length === 0) return null;
    this.turn = (this.turn + 1) % this.servers.length;
    const order = (s: Server) =>
      (this.servers.indexOf(s) - this.turn + this.servers.length) % this.servers.length;
    free.sort(
      (a, b) => this.load(a) - this.load(b) || a.outstanding - b.outstanding || order(a) - order(b),
    );
    const best = free[0];
    if (!best) return null;
    // Equally loaded (idle, typically) upstreams of different weights share by weight.
    const tied = free.filter(
      (s) => this.load(s) === this.load(best) && s.outstanding === best.outstanding,
    );
    return tied.some((s) => s.target.weight !== best.target.weight) ? weighted(tied) : best;
  }

  private lease(s: Server): Lease {
    s.outstanding += 1;
    s.requests += 1;
    let released = false;
    const watchers = new Set<() => void>();
    return {
      url: s.url,
      target: s.target,
      loaded: (model) => {
        const state = model === undefined ? undefined : s.models.get(model);
        return state === undefined || state === "loaded";
      },
      release: (failed) => {
        if (released) return;
        released = true;
        for (const w of watchers) s.downWatchers.delete(w);
        s.outstanding -= 1;
        if (failed) this.fail(s);
        else s.consecutiveFailures = 0;
        this.drain();
      },
      onDown: (abort) => {
        const watcher = () => abort();
        if (!released) {
          watchers.add(watcher);
          s.downWatchers.add(watcher);
        }
        return () => {
          watchers.delete(watcher);
          s.downWatchers.delete(watcher);
        };
      },
    };
  }

  private fail(s: Server): void {
    s.failures += 1;
    s.consecutiveFailures += 1;
    if (s.state === "ejected" || s.consecutiveFailures < this.config.ejectAfterFailures) return;
    const others = this.servers.filter((o) => o !== s && o.state !== "ejected");
    if (others.length === 0) return; // never eject the last one
    s.state = "ejected";
    s.passedChecks = 0;
  }

  /**
   * A server for one attempt, waiting in the gateway queue while every candidate is
   * saturated. Throws 503 + Retry-After when the queue is full or the wait times out.
   */
  acquire(exclude: ReadonlySet<string> = new Set(), signal?: AbortSignal): Promise<Lease> {
    const now = this.pick(exclude);
    if (now === "none") return Promise.reject(noServerError());
    if (now) return Promise.resolve(this.lease(now));
    if (this.queue.length >= this.config.queueMax) return Promise.reject(this.busy());
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        exclude,
        resolve: (lease) => {
          cleanup();
          resolve(lease);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const timer = setTimeout(() => waiter.reject(this.busy()), this.config.queueTimeoutMs);
      const onAbort = () => waiter.reject(signal?.reason ?? new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
      };
      this.queue.push(waiter);
    });
  }

  private busy(): HttpError {
    const seconds = Math.max(1, Math.ceil(this.config.queueTimeoutMs / 1000));
    return new HttpError(503, "LLM_BUSY", "Every model server is busy; try again shortly", {
      "retry-after": String(seconds),
    });
  }

  /** Hands freed capacity to the waiters, first come first served. */
  private drain(): void {
    while (this.queue.length > 0) {
      const w = this.queue[0] as Waiter;
      const s = this.pick(w.exclude);
      if (s === "none") {
        w.reject(noServerError());
        continue;
      }
      if (!s) return;
      w.resolve(this.lease(s));
    }
  }

  /** Probes every server's `/health/ready` once, updating states and reported load. */
  async checkAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.check(s)));
    this.drain();
  }

  private async check(s: Server): Promise<void> {
    let ok = false;
    let answered = false;
    try {
      // An OpenAI upstream's model list needs its key; llm-server's readiness needs nothing.
      const auth = s.target.kind === "openai" ? authorization(s.target, "") : undefined;
      const res = await fetch(`${s.url}${healthPath(s.target)}`, {
        signal: AbortSignal.timeout(this.probeTimeoutMs),
        dispatcher: s.target.dispatcher ?? this.dispatcher,
        ...(auth ? { headers: { authorization: auth } } : {}),
      });
      answered = true;
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      ok = res.status === 200;
      if (s.target.kind === "llm-server") this.readLoad(s, body);
      s.lastError = ok ? null : `health check answered ${res.status}`;
    } catch (err) {
      s.lastError = `health check failed: ${(err as Error).message}`;
    }
    s.lastCheckAt = Date.now();
    // Some OpenAI-compatible servers (llama-cpp-python's) answer one request at a time, their
    // model list too: unanswered while it serves ours is busy, not down (the first-token
    // timeout still bounds a frozen one).
    if (!answered && s.target.kind === "openai" && s.outstanding > 0) return;
    s.silentChecks = answered ? 0 : s.silentChecks + 1;
    if (!ok) {
      s.passedChecks = 0;
      if (s.state !== "ejected") s.state = "unhealthy";
      // Silent: calls still waiting on it go elsewhere (if anywhere is usable).
      const usable = (o: Server) => o !== s && (o.state === "healthy" || o.state === "unknown");
      if (s.silentChecks >= SILENT_CHECKS && s.downWatchers.size > 0 && this.servers.some(usable)) {
        for (const w of [...s.downWatchers]) w();
      }
      return;
    }
    s.passedChecks += 1;
    if (s.state !== "ejected" || s.passedChecks >= this.config.readmitAfterChecks) {
      if (s.state === "ejected") s.consecutiveFailures = 0;
      s.state = "healthy";
    }
  }

  /** The load and models llm-server reports in `/health/ready`. */
  private readLoad(s: Server, body: Record<string, unknown>): void {
    const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
    s.running = num(body.running);
    s.queued = num(body.queued);
    s.maxRunning = num(body.max_running) ?? s.maxRunning;
    s.external = Math.max(0, (s.running ?? 0) + (s.queued ?? 0) - s.outstanding);
    const models = new Map<string, string>();
    const caches = new Map<string, PrefixCacheReport>();
    if (Array.isArray(body.models)) {
      for (const m of body.models as { id?: unknown; state?: unknown; prefix_cache?: unknown }[]) {
        if (typeof m?.id !== "string" || typeof m.state !== "string") continue;
        models.set(m.id, m.state);
        const cache = readPrefixCache(m.prefix_cache);
        if (cache) caches.set(m.id, cache);
      }
    } else if (typeof body.model === "string") {
      // An llm-server serving one model names it; ready means it is loaded.
      models.set(body.model, "loaded");
    }
    s.models = models;
    s.prefixCaches = caches;
  }

  /** State and load of every server, for /api/admin/servers and /metrics. */
  snapshot() {
    return {
      servers: this.servers.map((s) => ({
        url: s.url,
        kind: s.target.kind,
        model: s.target.model ?? null,
        weight: s.target.weight,
        models: s.models,
        prefixCaches: s.prefixCaches,
        state: s.state,
        outstanding: s.outstanding,
        capacity: this.capacity(s),
        running: s.running,
        queued: s.queued,
        maxRunning: s.maxRunning,
        consecutiveFailures: s.consecutiveFailures,
        requests: s.requests,
        failures: s.failures,
        lastCheckAt: s.lastCheckAt === null ? null : new Date(s.lastCheckAt).toISOString(),
        lastError: s.lastError,
      })),
      queue: {
        waiting: this.queue.length,
        max: this.config.queueMax,
        timeoutMs: this.config.queueTimeoutMs,
      },
    };
  }
}

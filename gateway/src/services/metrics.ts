import client from "prom-client";

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A prom-client counter named, described and labelled in one line; Metrics registers it. */
class Counter<L extends string = never> extends client.Counter<L> {
  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    super({ name, help, labelNames, registers: [] });
  }
}

/** A prom-client histogram over SECONDS; Metrics registers it. */
class Histogram<L extends string> extends client.Histogram<L> {
  constructor(name: string, help: string, labelNames: readonly L[]) {
    super({ name, help, labelNames, buckets: SECONDS, registers: [] });
  }
}

/** A prom-client gauge whose values `collect` sets at scrape time; Metrics registers it. */
class Gauge<L extends string> extends client.Gauge<L> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (gauge: client.Gauge<L>) => void,
  ) {
    super({
      name,
      help,
      labelNames,
      registers: [],
      collect() {
        this.reset();
        collect(this);
      },
    });
  }
}

/** What the balancer gauges read at each scrape (Balancer.snapshot's shape). */
export interface BalancerView {
  servers: { url: string; state: string; outstanding: number }[];
  queue: { waiting: number };
}

/**
 * The gateway's Prometheus metrics in a registry of their own (one per app), with Node's
 * process and event-loop metrics (prom-client's defaults).
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpRequests = new Counter(
    "gateway_http_requests_total",
    "HTTP requests by route, method and status",
    ["method", "route", "status"],
  );
  readonly httpDuration = new Histogram(
    "gateway_http_request_duration_seconds",
    "HTTP request duration by route and status",
    ["route", "status"],
  );
  readonly llmRequests = new Counter(
    "gateway_llm_requests_total",
    "LLM requests by route, model, status and cache result",
    ["cache", "model", "route", "status"],
  );
  readonly llmTokens = new Counter(
    "gateway_llm_tokens_total",
    "LLM tokens by route, model and kind (prompt|completion)",
    ["kind", "model", "route"],
  );
  readonly llmTtft = new Histogram(
    "gateway_llm_time_to_first_token_seconds",
    "Time to first token by route and model",
    ["model", "route"],
  );
  readonly llmDuration = new Histogram(
    "gateway_llm_request_duration_seconds",
    "LLM request duration by route, model and status",
    ["model", "route", "status"],
  );
  readonly cache = new Counter(
    "gateway_cache_lookups_total",
    "Response cache lookups by result (hit|miss)",
    ["result"],
  );
  readonly cacheStores = new Counter(
    "gateway_cache_stores_total",
    "Complete answers offered to the response cache by result (stored|too_large|error)",
    ["result"],
  );
  readonly rejections = new Counter(
    "gateway_limit_rejections_total",
    "Requests refused by a limit",
    ["limit"],
  );
  readonly limitSettleFailures = new Counter(
    "gateway_limit_settle_failures_total",
    "Settles of limit counters the store (Redis) refused; each is retried until it succeeds",
  );
  readonly upstream = new Counter(
    "gateway_upstream_requests_total",
    "Requests sent to each llm-server by outcome",
    ["outcome", "server"],
  );
  readonly usageSpooled = new Counter(
    "gateway_usage_spooled_rows_total",
    "Usage rows the database could not take, kept for a later write, by where (file|memory)",
    ["to"],
  );
  readonly usageRetries = new Counter(
    "gateway_usage_write_retries_total",
    "Attempts to write waiting usage rows again",
  );
  readonly usageDropped = new Counter(
    "gateway_usage_dropped_rows_total",
    "Usage rows lost, by reason (bound: the in-memory spool was full; refused: the database refused the row itself; shutdown/closed: no spool file at exit)",
    ["reason"],
  );

  constructor() {
    for (const metric of [
      this.httpRequests,
      this.httpDuration,
      this.llmRequests,
      this.llmTokens,
      this.llmTtft,
      this.llmDuration,
      this.cache,
      this.cacheStores,
      this.rejections,
      this.limitSettleFailures,
      this.upstream,
      this.usageSpooled,
      this.usageRetries,
      this.usageDropped,
    ] as client.Metric[]) {
      this.registry.registerMetric(metric);
    }
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** Gauges of the balancer's state, read from `snapshot` at each scrape. */
  watchBalancer(snapshot: () => BalancerView): void {
    const gauges = [
      new Gauge(
        "gateway_llm_server_outstanding",
        "Requests in flight per llm-server",
        ["server"],
        (g) => {
          for (const s of snapshot().servers) g.set({ server: s.url }, s.outstanding);
        },
      ),
      new Gauge(
        "gateway_llm_server_up",
        "1 when the llm-server is usable (healthy or not yet checked)",
        ["server", "state"],
        (g) => {
          for (const s of snapshot().servers) {
            const up = s.state === "healthy" || s.state === "unknown";
            g.set({ server: s.url, state: s.state }, up ? 1 : 0);
          }
        },
      ),
      new Gauge("gateway_queue_waiting", "Requests waiting in the gateway queue", [], (g) =>
        g.set(snapshot().queue.waiting),
      ),
    ];
    for (const g of gauges) this.registry.registerMetric(g as client.Metric);
  }

  /** The text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

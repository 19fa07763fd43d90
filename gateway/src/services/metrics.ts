type Labels = Record<string, string>;

const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map(
      (k) =>
        `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
    )
    .join(",");

class Counter {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) out.push(`${this.name}{${k}} ${v}`);
    return out;
  }
}

class Histogram {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}
  observe(labels: Labels, value: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (const [i, b] of this.buckets.entries())
      if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count += 1;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? "," : "";
      for (const [i, b] of this.buckets.entries()) {
        out.push(`${this.name}_bucket{${k}${sep}le="${b}"} ${s.counts[i] ?? 0}`);
      }
      out.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum{${k}} ${s.sum}`, `${this.name}_count{${k}} ${s.count}`);
    }
    return out;
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The gateway's Prometheus metrics (text exposition format 0.0.4). */
export class Metrics {
  readonly httpRequests = new Counter(
    "gateway_http_requests_total",
    "HTTP requests by route, method and status",
  );
  readonly httpDuration = new Histogram(
    "gateway_http_request_duration_seconds",
    "HTTP request duration by route and status",
    SECONDS,
  );
  readonly llmRequests = new Counter(
    "gateway_llm_requests_total",
    "LLM requests by route, model, status and cache result",
  );
  readonly llmTokens = new Counter(
    "gateway_llm_tokens_total",
    "LLM tokens by route, model and kind (prompt|completion)",
  );
  readonly llmTtft = new Histogram(
    "gateway_llm_time_to_first_token_seconds",
    "Time to first token by route and model",
    SECONDS,
  );
  readonly llmDuration = new Histogram(
    "gateway_llm_request_duration_seconds",
    "LLM request duration by route, model and status",
    SECONDS,
  );
  readonly cache = new Counter(
    "gateway_cache_lookups_total",
    "Response cache lookups by result (hit|miss)",
  );
  readonly cacheStores = new Counter(
    "gateway_cache_stores_total",
    "Complete answers offered to the response cache by result (stored|too_large|error)",
  );
  readonly rejections = new Counter(
    "gateway_limit_rejections_total",
    "Requests refused by a limit",
  );
  readonly limitSettleFailures = new Counter(
    "gateway_limit_settle_failures_total",
    "Settles of limit counters the store (Redis) refused; each is retried until it succeeds",
  );
  readonly upstream = new Counter(
    "gateway_upstream_requests_total",
    "Requests sent to each llm-server by outcome",
  );
  readonly usageSpooled = new Counter(
    "gateway_usage_spooled_rows_total",
    "Usage rows the database could not take, kept for a later write, by where (file|memory)",
  );
  readonly usageRetries = new Counter(
    "gateway_usage_write_retries_total",
    "Attempts to write waiting usage rows again",
  );
  readonly usageDropped = new Counter(
    "gateway_usage_dropped_rows_total",
    "Usage rows lost, by reason (bound: the in-memory spool was full; refused: the database refused the row itself; shutdown/closed: no spool file at exit)",
  );
  private readonly gauges: (() => string[])[] = [];

  /** Adds gauges computed at scrape time (e.g. the balancer's state). */
  addCollector(collect: () => string[]): void {
    this.gauges.push(collect);
  }

  render(): string {
    const lines = [
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
    ].flatMap((m) => m.render());
    for (const g of this.gauges) lines.push(...g());
    return `${lines.join("\n")}\n`;
  }
}

/** One gauge family as exposition lines. */
export function gauge(name: string, help: string, samples: [Labels, number][]): string[] {
  return [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} gauge`,
    ...samples.map(([l, v]) => `${name}{${key(l)}} ${v}`),
  ];
}

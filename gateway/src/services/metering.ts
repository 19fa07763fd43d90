import type { FastifyBaseLogger } from "fastify";
import type { UsageRow } from "../db/schema.js";
import type { Admission, Caller, LimitService } from "./limits.js";
import type { Metrics } from "./metrics.js";
import { failureOutcome, type Outcome } from "./outcome.js";
import type { UsageService } from "./usage.js";

/** One LLM call: who makes it, on which route, and how it ends early. */
export interface CallContext extends Caller {
  /** The public route, for analytics and metrics. */
  route: string;
  requestId: string;
  /**
   * Aborts when the client goes away, or with an HttpError reason when the gateway ends
   * the call (the caller lost access, shutdown).
   */
  signal: AbortSignal;
  log: FastifyBaseLogger;
  /** Tokens the call may generate, all choices together (null: no cap); set on admission. */
  tokens?: number | null;
}

export interface MeteringDeps {
  limits: LimitService;
  usage: UsageService;
  metrics: Metrics;
}

/** The admission a call asks for (see LimitService.admit). */
export type AdmitRequest = Parameters<LimitService["admit"]>[1];

/**
 * The accounts of one LLM call, whatever its route: its quota admission and settle, its
 * usage row and metrics, and the outcome it ended with. `finish` and `fail` record the call
 * once (a second call is ignored); `settle` is idempotent.
 */
export class Meter {
  readonly row: UsageRow;
  private admission: Admission | undefined;
  private recorded = false;

  constructor(
    private readonly d: MeteringDeps,
    readonly ctx: CallContext,
    readonly t0: number,
    model: string | null,
  ) {
    this.row = {
      ts: t0,
      userId: ctx.userId,
      apiKeyId: ctx.apiKeyId,
      route: ctx.route,
      model,
      promptTokens: 0,
      completionTokens: 0,
      quotaTokens: 0,
      ttftMs: null,
      durationMs: 0,
      status: 200,
      outcome: "ok",
      cacheHit: 0,
      server: null,
      errorCode: null,
      estimated: 0,
    };
  }

  /** Takes the call's request slot and token reservation, or throws the limit's 429. */
  async admit(request: AdmitRequest): Promise<Admission> {
    this.admission = await this.d.limits.admit(this.ctx, request);
    return this.admission;
  }

  /** Charges `tokens` instead of the reservation and frees the slot (once; never throws). */
  async settle(tokens: number): Promise<void> {
    if (this.admission) await this.d.limits.settle(this.admission, tokens);
  }

  /** Notes the first token (or the whole answer) now, unless one was noted already. */
  firstToken(): void {
    this.row.ttftMs ??= Date.now() - this.t0;
  }

  /** Records the call's usage row and metrics with how it ended. */
  finish(status: number, outcome: Outcome["outcome"], errorCode: string | null = null): void {
    if (this.recorded) return;
    this.recorded = true;
    Object.assign(this.row, { durationMs: Date.now() - this.t0, status, outcome, errorCode });
    record(this.d, this.row, this.ctx.log);
  }

  /**
   * Records a call that failed with `err` (see failureOutcome: a client gone is 499, a limit
   * 429 `rejected` and counted, the model server's failure 502) and gives back what it
   * reserved.
   */
  async fail(err: unknown): Promise<void> {
    const o = failureOutcome(err, this.ctx.signal);
    if (o.outcome === "rejected" && !this.recorded)
      this.d.metrics.rejections.inc({ limit: o.errorCode?.toLowerCase() ?? "" });
    this.finish(o.status, o.outcome, o.errorCode);
    await this.settle(0);
  }

  /** How a call that ended before its end (no [DONE]) stopped, if the gateway or client stopped it. */
  stopped(): Outcome | null {
    return this.ctx.signal.aborted ? failureOutcome(null, this.ctx.signal) : null;
  }
}

/** Opens a Meter per LLM call, on the shared limits, usage table and metrics. */
export class Metering {
  constructor(private readonly d: MeteringDeps) {}

  /** A meter for a call starting now. */
  open(ctx: CallContext, model: string | null = null): Meter {
    return new Meter(this.d, ctx, Date.now(), model);
  }
}

/**
 * Writes one request's usage row (in the background) and its metrics. The row is never lost
 * to a database outage (see UsageRecorder); nothing is thrown: the answer already went (or is
 * going) to the client.
 */
function record(d: MeteringDeps, row: UsageRow, log: FastifyBaseLogger): void {
  // Not awaited: the answer does not wait for its usage row (readers of the table and
  // Database.close wait for writes in flight).
  d.usage.record(row).catch((err: unknown) => {
    log.error({ err }, "could not record usage");
  });
  const m = d.metrics;
  const model = row.model ?? "unknown";
  const status = String(row.status);
  const { route } = row;
  // Labels in the order they are exposed (prom-client keeps the first object's key order).
  m.llmRequests.inc({ cache: row.cacheHit ? "hit" : "miss", model, route, status });
  m.llmDuration.observe({ model, route, status }, row.durationMs / 1000);
  if (row.ttftMs !== null) m.llmTtft.observe({ model, route }, row.ttftMs / 1000);
  if (row.promptTokens) m.llmTokens.inc({ kind: "prompt", model, route }, row.promptTokens);
  if (row.completionTokens)
    m.llmTokens.inc({ kind: "completion", model, route }, row.completionTokens);
}

import type { FastifyBaseLogger } from "fastify";
import type { Metrics } from "./metrics.js";
import type { UsageRow, UsageService } from "./usage.js";

/**
 * Writes one request's usage row (in the background) and its metrics. A failed write is
 * logged, never thrown: the answer already went (or is going) to the client.
 */
export function recordUsage(
  d: { usage: UsageService; metrics: Metrics },
  row: UsageRow,
  log: FastifyBaseLogger,
): void {
  // Not awaited: the answer does not wait for its usage row (readers of the table and
  // Database.close wait for writes in flight).
  d.usage.record(row).catch((err: unknown) => {
    log.error({ err }, "could not record usage");
  });
  const m = d.metrics;
  const model = row.model ?? "unknown";
  const status = String(row.status);
  m.llmRequests.inc({ route: row.route, model, status, cache: row.cacheHit ? "hit" : "miss" });
  m.llmDuration.observe({ route: row.route, model, status }, row.durationMs / 1000);
  if (row.ttftMs !== null) m.llmTtft.observe({ route: row.route, model }, row.ttftMs / 1000);
  if (row.promptTokens)
    m.llmTokens.inc({ route: row.route, model, kind: "prompt" }, row.promptTokens);
  if (row.completionTokens)
    m.llmTokens.inc({ route: row.route, model, kind: "completion" }, row.completionTokens);
}

/** A usage row for a request starting now, to be completed when it ends. */
export function newRow(
  ctx: { userId: string; apiKeyId: string | null; route: string },
  ts: number,
  model: string | null,
): UsageRow {
  return {
    ts,
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
  };
}

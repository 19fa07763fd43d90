import type { FastifyBaseLogger } from "fastify";
import type { UsageRow } from "../db/schema.js";
import type { Metrics } from "./metrics.js";
import type { UsageService } from "./usage.js";

/**
 * Writes one request's usage row (in the background) and its metrics. The row is never lost
 * to a database outage (see UsageRecorder); nothing is thrown: the answer already went (or is
 * going) to the client.
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
  const { route } = row;
  // Labels in the order they are exposed (prom-client keeps the first object's key order).
  m.llmRequests.inc({ cache: row.cacheHit ? "hit" : "miss", model, route, status });
  m.llmDuration.observe({ model, route, status }, row.durationMs / 1000);
  if (row.ttftMs !== null) m.llmTtft.observe({ model, route }, row.ttftMs / 1000);
  if (row.promptTokens) m.llmTokens.inc({ kind: "prompt", model, route }, row.promptTokens);
  if (row.completionTokens)
    m.llmTokens.inc({ kind: "completion", model, route }, row.completionTokens);
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

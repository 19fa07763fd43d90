"use client";

import { fmtInt, fmtMs, fmtPct, quotaMeters, userTokenSeries } from "@/lib/charts";
import type { UserUsage } from "@/lib/types";
import { DayBarChart, Facts, QuotaMeters } from "../usage-chart";

/** GET /api/user/usage: the quota meters now, totals and tokens per day over the last 30 days. */
export function UserUsageView({ usage }: { usage: UserUsage }) {
  const t = usage.totals;
  const maxTokens = usage.quota.maxTokensPerRequest;
  return (
    <div className="stack">
      <QuotaMeters meters={quotaMeters(usage.quota)} label="Usage against quota" />
      <p className="muted small">
        Max tokens per request: {maxTokens === null ? "no limit" : fmtInt(maxTokens)}.
      </p>
      <h3>Last {usage.days.length} days</h3>
      <Facts
        label={`Totals over the last ${usage.days.length} days`}
        items={[
          ["Requests", fmtInt(t.requests)],
          ["Tokens", fmtInt(t.totalTokens)],
          ["Cache hits", `${fmtInt(t.cacheHits)} (${fmtPct(t.cacheHitRate)})`],
          ["Errors", `${fmtInt(t.errors)} (${fmtPct(t.errorRate)})`],
          ["Refused by limits", fmtInt(t.rejected)],
          ["Latency p50 / p95", `${fmtMs(t.latencyP50Ms)} / ${fmtMs(t.latencyP95Ms)}`],
        ]}
      />
      <DayBarChart title="Tokens per day" data={userTokenSeries(usage.days)} stacked />
    </div>
  );
}

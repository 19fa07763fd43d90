"use client";

import { useCallback, useState } from "react";
import { api } from "@/lib/api";
import {
  breakdownSeries,
  dayStatSeries,
  fmtInt,
  fmtMs,
  fmtPct,
  groupName,
  lastUtcDays,
} from "@/lib/charts";
import type { AdminUsage, AdminUsageRow } from "@/lib/types";
import { DayBarChart, Facts } from "../usage-chart";
import { useResource } from "../use-resource";

type Dim = "user" | "model";

interface Loaded {
  days: string[];
  by: Dim;
  byDay: AdminUsage;
  byUser: AdminUsage;
  byModel: AdminUsage;
  perDay: { day: string; rows: AdminUsageRow[] }[];
}

const RANGES = [7, 14, 30];

/** The section's queries for the last `range` UTC days, tokens per day broken down `by`. */
async function loadUsage(range: number, by: Dim, signal: AbortSignal): Promise<Loaded> {
  const days = lastUtcDays(range);
  const from = days[0]?.from ?? new Date().toISOString();
  const to = days[days.length - 1]?.to ?? new Date().toISOString();
  const q = (groupBy: "day" | Dim, f = from, t = to) =>
    api.adminUsage({ from: f, to: t, groupBy }, signal);
  const [byDay, byUser, byModel, perDay] = await Promise.all([
    q("day"),
    q("user"),
    q("model"),
    Promise.all(days.map((d) => q(by, d.from, d.to).then((r) => ({ day: d.day, rows: r.rows })))),
  ]);
  return { days: days.map((d) => d.day), by, byDay, byUser, byModel, perDay };
}

/**
 * GET /api/admin/usage over the last N UTC days: totals; tokens per day by user or
 * model (one `groupBy` query per day); latency percentiles, cache-hit and error rates
 * per day (`groupBy=day`); and tables by user and by model over the whole range.
 */
export function AdminUsageSection() {
  const [range, setRange] = useState(14);
  const [by, setBy] = useState<Dim>("user");
  const load = useCallback((signal: AbortSignal) => loadUsage(range, by, signal), [range, by]);
  const { data, error, reload } = useResource(load);

  return (
    <section className="panel" aria-labelledby="admin-usage-h" data-testid="admin-usage-h">
      <h2 id="admin-usage-h">Usage</h2>
      <div className="toolbar">
        <div className="field">
          <label htmlFor="usage-range">Period</label>
          <select id="usage-range" value={range} onChange={(e) => setRange(Number(e.target.value))}>
            {RANGES.map((n) => (
              <option key={n} value={n}>
                Last {n} days
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="usage-by">Tokens per day by</label>
          <select id="usage-by" value={by} onChange={(e) => setBy(e.target.value as Dim)}>
            <option value="user">user</option>
            <option value="model">model</option>
          </select>
        </div>
        <button type="button" className="btn" onClick={() => void reload()}>
          Refresh usage
        </button>
      </div>
      {error ? (
        <p role="alert" className="alert alert-error">
          {error}
        </p>
      ) : null}
      {!data ? error ? null : <p className="muted">Loading…</p> : <UsageView data={data} />}
    </section>
  );
}

function StatsTable({
  caption,
  head,
  rows,
}: {
  caption: string;
  head: string;
  rows: AdminUsageRow[];
}) {
  const sorted = [...rows].sort((a, b) => b.totalTokens - a.totalTokens);
  return (
    // A wide table scrolls sideways: keyboard users must be able to focus and scroll it.
    // biome-ignore lint/a11y/noNoninteractiveTabindex: scrollable region (WCAG 2.1.1)
    <section className="table-wrap" aria-label={caption} tabIndex={0}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{head}</th>
            <th scope="col">Requests</th>
            <th scope="col">Prompt tokens</th>
            <th scope="col">Completion tokens</th>
            <th scope="col">Total tokens</th>
            <th scope="col">Errors</th>
            <th scope="col">Refused</th>
            <th scope="col">Cache hits</th>
            <th scope="col">Latency p50 / p95 / p99</th>
            <th scope="col">First token p50</th>
          </tr>
        </thead>
        <tbody>
          {sorted.length === 0 ? (
            <tr>
              <td colSpan={10} className="muted">
                No requests in this period.
              </td>
            </tr>
          ) : (
            sorted.map((r) => (
              <tr key={groupName(r)}>
                <th scope="row">{groupName(r)}</th>
                <td>{fmtInt(r.requests)}</td>
                <td>{fmtInt(r.promptTokens)}</td>
                <td>{fmtInt(r.completionTokens)}</td>
                <td>{fmtInt(r.totalTokens)}</td>
                <td>
                  {fmtInt(r.errors)} ({fmtPct(r.errorRate)})
                </td>
                <td>{fmtInt(r.rejected)}</td>
                <td>
                  {fmtInt(r.cacheHits)} ({fmtPct(r.cacheHitRate)})
                </td>
                <td>
                  {fmtMs(r.latencyP50Ms)} / {fmtMs(r.latencyP95Ms)} / {fmtMs(r.latencyP99Ms)}
                </td>
                <td>{fmtMs(r.ttftP50Ms)}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </section>
  );
}

/** Totals, the three charts and the tables of one loaded period. */
function UsageView({ data }: { data: Loaded }) {
  const t = data.byDay.totals;
  return (
    <>
      <Facts
        label="Totals over the period"
        items={[
          ["Requests", fmtInt(t.requests)],
          ["Tokens", fmtInt(t.totalTokens)],
          ["Error rate", fmtPct(t.errorRate)],
          ["Cache-hit rate", fmtPct(t.cacheHitRate)],
          ["Refused by limits", fmtInt(t.rejected)],
          [
            "Latency p50 / p95 / p99",
            `${fmtMs(t.latencyP50Ms)} / ${fmtMs(t.latencyP95Ms)} / ${fmtMs(t.latencyP99Ms)}`,
          ],
          ["First token p50 / p95", `${fmtMs(t.ttftP50Ms)} / ${fmtMs(t.ttftP95Ms)}`],
        ]}
      />
      <div className="chart-grid">
        <DayBarChart
          title={`Tokens per day by ${data.by}`}
          data={breakdownSeries(data.perDay)}
          stacked
        />
        <DayBarChart
          title="Latency percentiles per day"
          data={dayStatSeries(data.days, data.byDay.rows, [
            { key: "latencyP50Ms", name: "p50" },
            { key: "latencyP95Ms", name: "p95" },
            { key: "latencyP99Ms", name: "p99" },
          ])}
          format={fmtMs}
        />
        <DayBarChart
          title="Cache-hit and error rates per day"
          data={dayStatSeries(data.days, data.byDay.rows, [
            { key: "cacheHitRate", name: "cache hits" },
            { key: "errorRate", name: "errors" },
          ])}
          format={fmtPct}
        />
      </div>
      <StatsTable caption="Usage by user" head="User" rows={data.byUser.rows} />
      <StatsTable caption="Usage by model" head="Model" rows={data.byModel.rows} />
    </>
  );
}

/**
 * Pure helpers turning the gateway's usage documents (see lib/types.ts and
 * gateway/README.md) into chart data: quota meters and per-day series.
 */
import type { AdminUsageRow, UsageStats, UserUsage } from "./types";

export const DAY_MS = 86_400_000;

export interface Meter {
  name: string;
  used: number;
  /** null = no limit */
  limit: number | null;
  resetAt: string | null;
}

/** One named series of values, aligned with `ChartData.days` (null = no value that day). */
export interface Series {
  name: string;
  values: (number | null)[];
}

export interface ChartData {
  /** UTC days, `YYYY-MM-DD`, oldest first. */
  days: string[];
  series: Series[];
}

/** The quota meters of GET /api/user/usage, named for people (one more per model quota). */
export function quotaMeters(quota: UserUsage["quota"]): Meter[] {
  return [
    { name: "Tokens today", ...pick(quota.tokensPerDay) },
    ...quota.models.map((m) => ({ name: `${m.model}: tokens today`, ...pick(m.tokensPerDay) })),
    { name: "Requests this minute", ...pick(quota.requestsPerMinute) },
    { name: "Concurrent streams", ...pick(quota.concurrentStreams) },
  ];
}

const pick = (m: { used: number; limit: number | null; resetAt: string | null }) => ({
  used: m.used,
  limit: m.limit,
  resetAt: m.resetAt,
});

/** Prompt and completion tokens per day (stacked), from GET /api/user/usage. */
export function userTokenSeries(days: UserUsage["days"]): ChartData {
  return {
    days: days.map((d) => d.day),
    series: [
      { name: "Prompt tokens", values: days.map((d) => d.promptTokens) },
      { name: "Completion tokens", values: days.map((d) => d.completionTokens) },
    ],
  };
}

/** The last `n` UTC days ending today: `[from, to)` of each as ISO strings, oldest first. */
export function lastUtcDays(
  n: number,
  now = Date.now(),
): { day: string; from: string; to: string }[] {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const start = today - i * DAY_MS;
    out.push({
      day: new Date(start).toISOString().slice(0, 10),
      from: new Date(start).toISOString(),
      to: new Date(start + DAY_MS).toISOString(),
    });
  }
  return out;
}

/** Chosen statistics of `groupBy=day` rows, one series per statistic; days without rows are null. */
export function dayStatSeries(
  days: string[],
  rows: AdminUsageRow[],
  stats: { key: keyof UsageStats; name: string; scale?: number }[],
): ChartData {
  const byDay = new Map(rows.map((r) => [r.day ?? "", r]));
  return {
    days,
    series: stats.map(({ key, name, scale = 1 }) => ({
      name,
      values: days.map((d) => {
        const v = byDay.get(d)?.[key];
        return typeof v === "number" ? v * scale : null;
      }),
    })),
  };
}

/** How a row of `groupBy=user|model` is named. */
export function groupName(row: AdminUsageRow): string {
  return row.model ?? row.email ?? row.userId ?? "(unknown)";
}

/**
 * One series per user or model (the `top` biggest over the range, the rest summed as
 * "Others") of one statistic per day, from one `groupBy=user|model` answer per day.
 */
export function breakdownSeries(
  perDay: { day: string; rows: AdminUsageRow[] }[],
  metric: keyof UsageStats = "totalTokens",
  top = 6,
): ChartData {
  const val = (r: AdminUsageRow) => {
    const v = r[metric];
    return typeof v === "number" ? v : 0;
  };
  const totals = new Map<string, number>();
  for (const { rows } of perDay) {
    for (const r of rows) totals.set(groupName(r), (totals.get(groupName(r)) ?? 0) + val(r));
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const keep = new Set(ranked.slice(0, ranked.length > top ? top - 1 : top).map(([k]) => k));
  const names = [...keep];
  if (ranked.length > keep.size) names.push("Others");
  return {
    days: perDay.map((d) => d.day),
    series: names.map((name) => ({
      name,
      values: perDay.map(({ rows }) =>
        rows
          .filter((r) => (name === "Others" ? !keep.has(groupName(r)) : groupName(r) === name))
          .reduce((s, r) => s + val(r), 0),
      ),
    })),
  };
}

/** Largest stacked or single value of a chart (at least 1, for scaling). */
export function chartMax(data: ChartData, stacked: boolean): number {
  let max = 0;
  data.days.forEach((_, i) => {
    const vals = data.series.map((s) => s.values[i] ?? 0);
    max = Math.max(max, stacked ? vals.reduce((a, b) => a + b, 0) : Math.max(0, ...vals));
  });
  return Math.max(1, max);
}

export const fmtInt = (n: number | null | undefined) =>
  typeof n === "number" ? Math.round(n).toLocaleString("en-US") : "—";
export const fmtPct = (r: number | null | undefined) =>
  typeof r === "number" ? `${(r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0)}%` : "—";
export const fmtMs = (ms: number | null | undefined) =>
  typeof ms === "number"
    ? ms >= 10_000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.round(ms)} ms`
    : "—";

/**
 * Pure helpers that turn usage documents (whose exact shape a later gateway
 * issue defines) into chart data: quota meters and per-day series.
 */

export interface Meter {
  name: string;
  used: number;
  limit: number | null;
  resetAt: string | null;
}

export interface DaySeries {
  /** Numeric columns that can be charted. */
  metrics: string[];
  /** Sorted days (the values of the date column). */
  days: string[];
  /** metric -> day -> sum over rows of that day (e.g. over users and models). */
  values: Record<string, Record<string, number>>;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const DAY_KEYS = ["day", "date", "period", "bucket", "time", "timestamp"];

/** Every `{used, limit?, resetAt?}` found at the top level or one level down; other scalars as facts. */
export function extractMeters(doc: unknown): { meters: Meter[]; facts: [string, string][] } {
  const meters: Meter[] = [];
  const facts: [string, string][] = [];
  if (!isObj(doc)) return { meters, facts };
  const visit = (name: string, v: unknown, depth: number) => {
    if (isObj(v) && typeof v.used === "number") {
      const reset = v.resetAt ?? v.resetsAt ?? v.reset;
      meters.push({
        name,
        used: v.used,
        limit: typeof v.limit === "number" ? v.limit : null,
        resetAt: typeof reset === "string" || typeof reset === "number" ? String(reset) : null,
      });
    } else if (isObj(v) && depth < 1) {
      for (const [k, x] of Object.entries(v)) visit(name ? `${name} ${k}` : k, x, depth + 1);
    } else if (typeof v === "number" || typeof v === "string") {
      facts.push([name, String(v)]);
    }
  };
  for (const [k, v] of Object.entries(doc)) visit(k, v, 0);
  return { meters, facts };
}

/** Finds the first array of rows with a day column and numeric columns, summed per day. */
export function daySeries(doc: unknown): DaySeries | null {
  const arrays: unknown[][] = Array.isArray(doc)
    ? [doc]
    : isObj(doc)
      ? Object.values(doc).filter((v): v is unknown[] => Array.isArray(v))
      : [];
  for (const arr of arrays) {
    const rows = arr.filter(isObj);
    if (rows.length === 0) continue;
    const first = rows[0] as Record<string, unknown>;
    const dayKey = DAY_KEYS.find(
      (k) => typeof first[k] === "string" || typeof first[k] === "number",
    );
    if (!dayKey) continue;
    const metrics = Object.keys(first).filter((k) => k !== dayKey && typeof first[k] === "number");
    if (metrics.length === 0) continue;
    const values: Record<string, Record<string, number>> = {};
    const days = new Set<string>();
    for (const row of rows) {
      const day = String(row[dayKey]).slice(0, 10);
      days.add(day);
      for (const m of metrics) {
        const v = row[m];
        if (typeof v !== "number" || !Number.isFinite(v)) continue;
        values[m] ??= {};
        const byDay = values[m];
        byDay[day] = (byDay[day] ?? 0) + v;
      }
    }
    return { metrics, days: [...days].sort(), values };
  }
  return null;
}

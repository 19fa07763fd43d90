import { type ChartData, chartMax, fmtInt, type Meter } from "@/lib/charts";

/** Series colours (legend swatch + bars); distinguishable in light and dark themes. */
export const SERIES_COLORS = [
  "#2f6fde",
  "#e07b00",
  "#1f9e6b",
  "#d13c8a",
  "#8a5cf0",
  "#0e9bb5",
  "#8a8f98",
];

/** Quota meters: used against limit as bars, with the reset time when given. */
export function QuotaMeters({ meters, label }: { meters: Meter[]; label: string }) {
  return (
    <ul className="bars" aria-label={label}>
      {meters.map((m) => {
        const ratio = m.limit ? Math.min(1, m.used / m.limit) : 0;
        return (
          <li key={m.name} data-testid="quota-meter">
            <span className="bar-label">{m.name}</span>
            <span className="bar-track" aria-hidden="true">
              <span
                className={ratio > 0.9 ? "bar-fill bar-warn" : "bar-fill"}
                style={{ width: `${ratio * 100}%` }}
              />
            </span>
            <span className="bar-value">
              {fmtInt(m.used)}
              {m.limit !== null ? ` / ${fmtInt(m.limit)}` : " (no limit)"}
              {m.resetAt ? ` · resets ${new Date(m.resetAt).toLocaleString()}` : ""}
            </span>
          </li>
        );
      })}
    </ul>
  );
}

/** A definition list of label → value. */
export function Facts({ items, label }: { items: [string, string][]; label?: string }) {
  return (
    <dl className="facts" aria-label={label}>
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/**
 * Per-day bar chart of one or more series: stacked (parts of a whole, e.g. tokens by
 * user) or side by side (e.g. latency percentiles). The SVG has a text alternative and
 * every bar a tooltip; the legend names the series.
 */
export function DayBarChart({
  title,
  data,
  stacked = false,
  format = fmtInt,
}: {
  title: string;
  data: ChartData;
  stacked?: boolean;
  format?: (v: number) => string;
}) {
  const max = chartMax(data, stacked);
  const n = Math.max(1, data.days.length);
  const w = 30;
  const h = 120;
  const groupW = w - 6;
  const barW = stacked ? groupW : groupW / Math.max(1, data.series.length);
  const summary = data.days
    .map((d, i) => {
      const parts = data.series
        .filter((s) => s.values[i] !== null && s.values[i] !== undefined)
        .map((s) => `${s.name} ${format(s.values[i] ?? 0)}`);
      return parts.length > 0 ? `${d}: ${parts.join(", ")}` : `${d}: no data`;
    })
    .join("; ");
  // No requests at all (a day with requests and a 0% rate is data, drawn as no bar).
  const empty = data.series.every((s) => s.values.every((v) => v === null || v === undefined));
  return (
    <figure className="day-chart">
      <figcaption className="chart-title">{title}</figcaption>
      {empty ? (
        <p className="muted small">No data in this period.</p>
      ) : (
        <svg
          role="img"
          aria-label={`${title}. ${summary}`}
          viewBox={`0 0 ${n * w} ${h}`}
          width="100%"
          height={h}
          preserveAspectRatio="none"
        >
          {data.days.map((d, i) => {
            let y = h;
            return (
              <g key={d}>
                {data.series.map((s, j) => {
                  const v = s.values[i];
                  if (v === null || v === undefined || v <= 0) return null;
                  const bh = (v / max) * h;
                  const x = i * w + 3 + (stacked ? 0 : j * barW);
                  if (stacked) y -= bh;
                  return (
                    <rect
                      key={s.name}
                      x={x}
                      y={stacked ? y : h - bh}
                      width={Math.max(1, barW - (stacked ? 0 : 1))}
                      height={bh}
                      fill={SERIES_COLORS[j % SERIES_COLORS.length]}
                    >
                      <title>{`${d} · ${s.name}: ${format(v)}`}</title>
                    </rect>
                  );
                })}
              </g>
            );
          })}
        </svg>
      )}
      <div className="chart-foot small">
        <span className="muted">
          {data.days[0]} – {data.days[data.days.length - 1]} · max {format(max)}
        </span>
        <ul className="legend" aria-label={`${title}: legend`}>
          {data.series.map((s, j) => (
            <li key={s.name}>
              <span
                className="legend-swatch"
                aria-hidden="true"
                style={{ background: SERIES_COLORS[j % SERIES_COLORS.length] }}
              />
              {s.name}
            </li>
          ))}
        </ul>
      </div>
    </figure>
  );
}

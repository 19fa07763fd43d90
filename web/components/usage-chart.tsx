"use client";

import { useState } from "react";
import { daySeries, extractMeters } from "@/lib/charts";

/** Quota meters: used against limit as bars, with the reset time when given. */
export function UsageChart({ doc, label }: { doc: unknown; label: string }) {
  const { meters, facts } = extractMeters(doc);
  return (
    <div>
      {meters.length > 0 ? (
        <ul className="bars" aria-label={label}>
          {meters.map((m) => {
            const ratio = m.limit ? Math.min(1, m.used / m.limit) : 0;
            return (
              <li key={m.name}>
                <span className="bar-label">{m.name}</span>
                <span className="bar-track">
                  <span
                    className={ratio > 0.9 ? "bar-fill bar-warn" : "bar-fill"}
                    style={{ width: `${ratio * 100}%` }}
                  />
                </span>
                <span className="bar-value">
                  {m.used.toLocaleString()}
                  {m.limit !== null ? ` / ${m.limit.toLocaleString()}` : " (no limit)"}
                  {m.resetAt ? ` · resets ${new Date(m.resetAt).toLocaleString()}` : ""}
                </span>
              </li>
            );
          })}
        </ul>
      ) : null}
      {facts.length > 0 ? (
        <dl className="facts">
          {facts.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      ) : null}
      {meters.length === 0 && facts.length === 0 ? <p className="muted">No usage yet.</p> : null}
      <DayChart doc={doc} />
    </div>
  );
}

/** Per-day bars of one numeric column (chosen in a select), summed over the rows of each day. */
export function DayChart({ doc }: { doc: unknown }) {
  const series = daySeries(doc);
  const [metric, setMetric] = useState<string | null>(null);
  if (!series) return null;
  const m = metric && series.metrics.includes(metric) ? metric : (series.metrics[0] ?? "");
  const values = series.values[m] ?? {};
  const max = Math.max(1, ...series.days.map((d) => values[d] ?? 0));
  const w = 28;
  const h = 120;
  return (
    <figure className="day-chart">
      <div className="field">
        <label htmlFor="day-metric">Per day</label>
        <select id="day-metric" value={m} onChange={(e) => setMetric(e.target.value)}>
          {series.metrics.map((x) => (
            <option key={x} value={x}>
              {x}
            </option>
          ))}
        </select>
      </div>
      <svg
        role="img"
        aria-label={`${m} per day: ${series.days.map((d) => `${d} ${values[d] ?? 0}`).join(", ")}`}
        viewBox={`0 0 ${series.days.length * w} ${h + 16}`}
        width="100%"
        height={h + 16}
        preserveAspectRatio="none"
      >
        {series.days.map((d, i) => {
          const v = values[d] ?? 0;
          const bh = (v / max) * h;
          return (
            <g key={d}>
              <title>{`${d}: ${v.toLocaleString()}`}</title>
              <rect x={i * w + 3} y={h - bh} width={w - 6} height={bh} className="day-bar" />
            </g>
          );
        })}
      </svg>
      <figcaption className="muted small">
        {series.days[0]} – {series.days[series.days.length - 1]} · max {max.toLocaleString()}
      </figcaption>
    </figure>
  );
}

/**
 * Renders a usage document whose exact shape is defined by a later gateway
 * issue: every `{used, limit}` pair found at the top level or one level down
 * becomes a bar (used against quota); other numbers are listed.
 */

interface Meter {
  name: string;
  used: number;
  limit: number | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

export function extractMeters(doc: unknown): { meters: Meter[]; facts: [string, string][] } {
  const meters: Meter[] = [];
  const facts: [string, string][] = [];
  if (!isObj(doc)) return { meters, facts };
  const visit = (name: string, v: unknown, depth: number) => {
    if (isObj(v) && typeof v.used === "number") {
      meters.push({ name, used: v.used, limit: typeof v.limit === "number" ? v.limit : null });
    } else if (isObj(v) && depth < 1 && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) visit(name ? `${name} ${k}` : k, x, depth + 1);
    } else if (typeof v === "number" || typeof v === "string") {
      facts.push([name, String(v)]);
    }
  };
  for (const [k, v] of Object.entries(doc)) visit(k, v, 0);
  return { meters, facts };
}

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
    </div>
  );
}

import type { AnalyzedToken } from "@/lib/types";

/** Probability bucket of a token from its log-probability (null: first token, not scored). */
export function bucket(logprob: number | null): "none" | "high" | "mid" | "low" {
  if (logprob === null || !Number.isFinite(logprob)) return "none";
  const p = Math.exp(logprob);
  if (p >= 0.3) return "high";
  if (p >= 0.05) return "mid";
  return "low";
}

export function pct(logprob: number): string {
  const p = Math.exp(logprob) * 100;
  if (p >= 1) return `${p.toFixed(1)}%`;
  if (p >= 0.01) return `${p.toFixed(2)}%`;
  return "<0.01%";
}
const show = (t: string) => t.replace(/\n/g, "⏎").replace(/ /g, "·") || "∅";

/** Each token coloured by its probability; hover or keyboard focus reveals the top alternatives. */
export function TokenView({ tokens }: { tokens: AnalyzedToken[] }) {
  return (
    <div className="tokens" data-testid="tokens">
      {tokens.map((t, i) => {
        const id = `tok-tip-${i}`;
        const prob = t.logprob === null ? "not scored" : pct(t.logprob);
        return (
          // biome-ignore lint/suspicious/noArrayIndexKey: positional tokens
          <span key={i} className="token-wrap">
            <button type="button" className={`token p-${bucket(t.logprob)}`} aria-describedby={id}>
              {t.token}
            </button>
            <span role="tooltip" id={id} className="token-tip">
              <strong>
                {show(t.token)} · {prob}
              </strong>
              {t.top_logprobs.length > 0 ? (
                <ol>
                  {t.top_logprobs.map((a) => (
                    <li key={a.token}>
                      <code>{show(a.token)}</code> {pct(a.logprob)}
                    </li>
                  ))}
                </ol>
              ) : null}
            </span>
          </span>
        );
      })}
    </div>
  );
}

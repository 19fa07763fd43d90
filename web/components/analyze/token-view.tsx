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

/** Space kept between a tooltip and the edges of the window. */
const EDGE = 8;

/**
 * Places a token's tooltip in the window (position: fixed, so no scrolling card or pane clips
 * it): below the token, or above it when there is no room below, moved left as far as needed
 * to stay inside the window.
 */
export function placeTip(
  token: DOMRect,
  tip: { width: number; height: number },
  view: { width: number; height: number },
): { left: number; top: number } {
  const below = token.bottom + 4;
  const top =
    below + tip.height <= view.height - EDGE ? below : Math.max(EDGE, token.top - 4 - tip.height);
  const left = Math.max(EDGE, Math.min(token.left, view.width - EDGE - tip.width));
  return { left, top };
}

/** The tooltip that describes `token` (its aria-describedby). */
function tipOf(token: HTMLElement): HTMLElement | null {
  const id = token.getAttribute("aria-describedby");
  return id ? document.getElementById(id) : null;
}

/** Shows the tooltip of the token that is hovered or focused, placed by {@link placeTip}. */
function openTip(token: HTMLElement) {
  const tip = tipOf(token);
  if (!tip) return;
  tip.dataset.open = "true";
  const { left, top } = placeTip(
    token.getBoundingClientRect(),
    { width: tip.offsetWidth, height: tip.offsetHeight },
    { width: window.innerWidth, height: window.innerHeight },
  );
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

function closeTip(token: HTMLElement) {
  // Still hovered or focused: the other one keeps it open.
  if (token.matches(":hover") || token.matches(":focus")) return;
  const tip = tipOf(token);
  if (tip) delete tip.dataset.open;
}

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
            <button
              type="button"
              className={`token p-${bucket(t.logprob)}`}
              aria-describedby={id}
              onMouseEnter={(e) => openTip(e.currentTarget)}
              onFocus={(e) => openTip(e.currentTarget)}
              onMouseLeave={(e) => closeTip(e.currentTarget)}
              onBlur={(e) => closeTip(e.currentTarget)}
            >
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

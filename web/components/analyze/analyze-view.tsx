"use client";

import { type FormEvent, useRef, useState } from "react";
import { api } from "@/lib/api";
import { describeError, type ErrorView } from "@/lib/errors";
import type { AnalyzeResult } from "@/lib/types";
import { TokenView } from "./token-view";

export function AnalyzeView() {
  const [result, setResult] = useState<AnalyzeResult | null>(null);
  const [error, setError] = useState<ErrorView | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  async function analyze() {
    const form = formRef.current;
    if (!form) return;
    const data = new FormData(form);
    const text = String(data.get("text") ?? "");
    if (!text.trim()) return;
    const labels = String(data.get("labels") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    setBusy(true);
    setError(null);
    try {
      setResult(await api.analyze(text, labels));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="page">
      <h1>Analyze a text</h1>
      <p className="muted">
        See how likely the model finds each token. Hover or focus a token for the model&apos;s top
        alternatives.
      </p>
      <form
        ref={formRef}
        className="stack"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void analyze();
        }}
      >
        <div className="field">
          <label htmlFor="analyze-text">Text</label>
          <textarea id="analyze-text" name="text" rows={6} required />
        </div>
        <div className="field">
          <label htmlFor="analyze-labels">Labels (optional, comma-separated)</label>
          <input id="analyze-labels" name="labels" placeholder="positive, negative" />
        </div>
        <div>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Analyzing…" : "Analyze"}
          </button>
        </div>
      </form>
      {error ? (
        <div role="alert" className="alert alert-error">
          <strong>{error.title}.</strong> {error.detail}{" "}
          {error.retryable ? (
            <button type="button" className="btn btn-small" onClick={() => void analyze()}>
              Retry
            </button>
          ) : null}
        </div>
      ) : null}
      {result ? <AnalyzeResultView result={result} /> : null}
    </div>
  );
}

export function AnalyzeResultView({ result }: { result: AnalyzeResult }) {
  return (
    <section className="panel analyze-result" aria-labelledby="analyze-result-heading">
      <h2 id="analyze-result-heading">Result</h2>
      <dl className="stats">
        <div>
          <dt>Model</dt>
          <dd>{result.model}</dd>
        </div>
        <div>
          <dt>Tokens</dt>
          <dd data-testid="token-count">{result.token_count}</dd>
        </div>
        <div>
          <dt>Perplexity</dt>
          <dd data-testid="perplexity">
            {result.perplexity !== null && Number.isFinite(result.perplexity)
              ? result.perplexity.toFixed(2)
              : "—"}
          </dd>
        </div>
      </dl>
      <TokenView tokens={result.tokens} />
      <p className="legend muted small">
        <span className="legend-swatch" style={{ background: "var(--p-high)" }} /> likely
        <span className="legend-swatch" style={{ background: "var(--p-mid)" }} /> possible
        <span className="legend-swatch" style={{ background: "var(--p-low)" }} /> surprising
      </p>
      {result.classification && result.classification.length > 0 ? (
        <>
          <h3>Classification</h3>
          <ul className="bars" aria-label="Classification probabilities">
            {result.classification.map((c) => (
              <li key={c.label}>
                <span className="bar-label">{c.label}</span>
                <span className="bar-track">
                  <span
                    className="bar-fill"
                    style={{ width: `${Math.max(0, Math.min(1, c.probability)) * 100}%` }}
                  />
                </span>
                <span className="bar-value">{(c.probability * 100).toFixed(1)}%</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

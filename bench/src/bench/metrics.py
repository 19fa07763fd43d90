"""From request records to the reported figures."""

from __future__ import annotations

import statistics
from typing import Any

from bench.client import RequestRecord


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(records: list[RequestRecord]) -> dict[str, Any]:
    """Latencies in milliseconds; throughput over the span from first send to last byte."""
    ok = [r for r in records if r.ok]
    out: dict[str, Any] = {"requests": len(records), "errors": len(records) - len(ok)}
    if errors := [r.error for r in records if r.error]:
        out["first_error"] = errors[0]
    if not ok:
        return out
    span = max(r.finished for r in ok) - min(r.started for r in ok)
    tokens = sum(r.output_tokens for r in ok)
    ttft = [1000 * r.ttft for r in ok]
    e2e = [1000 * r.e2e for r in ok]
    tpot = [1000 * (r.e2e - r.ttft) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    gaps = [1000 * g for r in ok for g in r.gaps]
    out.update(
        seconds=span,
        requests_per_s=len(ok) / span,
        output_tokens_per_s=tokens / span,
        output_tokens=tokens,
        short_completions=sum(1 for r in ok if r.finish_reason != "length"),
        ttft_p50_ms=percentile(ttft, 50),
        ttft_p99_ms=percentile(ttft, 99),
        tpot_ms=statistics.median(tpot) if tpot else float("nan"),
        itl_p50_ms=percentile(gaps, 50),
        itl_p99_ms=percentile(gaps, 99),
        e2e_p50_ms=percentile(e2e, 50),
        e2e_p95_ms=percentile(e2e, 95),
        e2e_p99_ms=percentile(e2e, 99),
    )
    return out


def stall_ratios(streams: list[RequestRecord], since: float) -> list[float]:
    """Per stream: its largest inter-token gap over its median gap, counting the gaps that end
    after `since` (when all streams were decoding)."""
    ratios = []
    for r in streams:
        gaps = [b - a for a, b in zip(r.events, r.events[1:], strict=False) if b > since]
        if len(gaps) >= 2:
            ratios.append(max(gaps) / max(1e-9, statistics.median(gaps)))
    return ratios

"""From request records to the reported figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from bench.checks import check_record
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
    problems = [r.token_problem for r in records if r.token_problem]
    out["token_mismatches"] = len(problems)
    if problems:
        out["first_token_mismatch"] = problems[0]
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
        usage_missing=sum(1 for r in ok if r.state.completion_tokens is None),
        prompt_tokens_mean=_mean([r.state.prompt_tokens for r in ok]),
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


def _mean(values: list[int | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else float("nan")


def check_tokens(records: list[RequestRecord], count_tokens: Callable[[str], int]) -> None:
    """Sets each finished record's `token_problem` (bench.checks)."""
    for r in records:
        if r.ok:
            r.token_problem = check_record(
                r.max_tokens,
                r.finish_reason,
                r.state.completion_tokens,
                r.state.content_events,
                r.state.text,
                count_tokens,
            )


def stall_ratios(streams: list[RequestRecord], since: float) -> list[float]:
    """Per stream: its largest inter-token gap over its median gap, counting the gaps that end
    after `since` (when all streams were decoding)."""
    ratios = []
    for r in streams:
        gaps = [b - a for a, b in zip(r.events, r.events[1:], strict=False) if b > since]
        if len(gaps) >= 2:
            ratios.append(max(gaps) / max(1e-9, statistics.median(gaps)))
    return ratios


def clean_json(value: Any) -> Any:
    """The value with every NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value

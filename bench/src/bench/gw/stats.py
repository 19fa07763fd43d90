"""Figures from request results: percentiles, added latency, medians over rounds."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.gw.httpload import Result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summarize_requests(results: list[Result], duration: float) -> dict[str, Any]:
    """Non-streamed requests: latency from write to last byte, milliseconds."""
    ok = [r for r in results if r.ok]
    lat = [r.latency_ms for r in ok]
    lag = [(r.sent - r.intended) / 1e6 for r in results if r.sent and r.intended]
    errors = [r for r in results if not r.ok]
    out: dict[str, Any] = {
        "requests": len(results),
        "ok": len(ok),
        "errors": len(errors),
        "achieved_rps": len(ok) / duration if duration > 0 else float("nan"),
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "send_lag_p50_ms": percentile(lag, 50),
        "send_lag_p99_ms": percentile(lag, 99),
    }
    if errors:
        first = errors[0]
        out["first_error"] = first.error or f"HTTP {first.status}: {first.body[:200]!r}"
    return out


def summarize_streams(results: list[Result], chunks: int) -> dict[str, Any]:
    """Streams from the stub: every content chunk carries the stub's send time, so its
    delivery delay (arrival − stamp) is known; pooled over all chunks of all streams."""
    ok = [r for r in results if r.ok and r.saw_done and len(r.stamped_delays_ms()) == chunks]
    delays = [d for r in ok for d in r.stamped_delays_ms()]
    first = [(r.events[0][0] - r.sent) / 1e6 for r in ok if r.events]
    e2e = [r.latency_ms for r in ok]
    out: dict[str, Any] = {
        "streams": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "chunks": len(delays),
        "chunk_delay_p50_ms": percentile(delays, 50),
        "chunk_delay_p99_ms": percentile(delays, 99),
        "first_chunk_p50_ms": percentile(first, 50),
        "first_chunk_p99_ms": percentile(first, 99),
        "e2e_p50_ms": percentile(e2e, 50),
        "e2e_p99_ms": percentile(e2e, 99),
    }
    bad = [r for r in results if r not in ok]
    if bad:
        r = bad[0]
        out["first_error"] = r.error or (
            f"HTTP {r.status}, {len(r.stamped_delays_ms())} stamped chunks, [DONE]={r.saw_done}"
        )
    return out


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per numeric key, the median over rounds (NaNs left out); other keys from the first."""
    out: dict[str, Any] = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if key in r]
        if all(isinstance(v, int | float) for v in values):
            finite = [float(v) for v in values if not math.isnan(float(v))]
            out[key] = statistics.median(finite) if finite else float("nan")
        else:
            out[key] = values[0]
    return out


def added(target: dict[str, Any], direct: dict[str, Any], keys: list[str]) -> dict[str, float]:
    """What a proxy adds over calling the upstream directly: the difference of each figure."""
    return {f"added_{k}": target[k] - direct[k] for k in keys}


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; inf when the denominator is ≤ 0 (nothing measurable added)."""
    if math.isnan(numerator) or math.isnan(denominator):
        return float("nan")
    if denominator <= 0:
        return float("inf")
    return numerator / denominator


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞"
        return f"{value:.{digits}f}"
    return str(value)

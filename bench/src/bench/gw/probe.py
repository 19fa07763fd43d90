"""The event-loop probe's lines (`loop_probe.mjs`), cut into a measurement's window: how long
the proxy's event loop was blocked, how busy it was and what garbage collection cost while
one load level ran — evidence for a tail that does not change with the machine's noise."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.gw.stats import percentile


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of the probe's file (none when it does not exist)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by the process stopping mid-write
    return out


def window(
    lines: list[dict[str, Any]], start: float, end: float, interval: float = 0.5
) -> dict[str, Any]:
    """Summary of the probe's intervals (`interval` s each) that ended inside [start, end]
    (wall seconds): the worst loop delay and the median of the intervals' p99, mean
    utilisation, GC count and pauses; rates per second of those intervals."""
    inside = [x for x in lines if start < x["t"] <= end]
    if not inside:
        return {}
    pauses = [float(d) for x in inside for _, d in x["gc"]]
    minor = [float(d) for x in inside for kind, d in x["gc"] if kind == "minor"]
    seconds = len(inside) * interval
    return {
        "loop_delay_p99_ms": statistics.median(x["delay_p99_ms"] for x in inside),
        "loop_delay_max_ms": max(x["delay_max_ms"] for x in inside),
        "elu_pct": 100 * statistics.fmean(x["elu"] for x in inside),
        "gc_per_s": len(pauses) / seconds,
        "gc_pause_p99_ms": percentile(pauses, 99),
        "gc_pause_max_ms": max(pauses, default=0.0),
        "gc_minor": len(minor),
        "gc_total": len(pauses),
        "gc_ms_per_s": sum(pauses) / seconds,
    }

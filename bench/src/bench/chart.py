"""The PNG chart: throughput and TTFT against concurrency (closed loop, first prompt length)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def chart(result: dict[str, Any], targets: list[str], path: Path, title: str) -> None:
    sweep = [w for w in result["workloads"] if w["kind"] == "closed"]
    if not sweep:
        return
    first = sweep[0]["prompt"]
    sweep = [w for w in sweep if w["prompt"] == first]
    levels = [w["concurrency"] for w in sweep]
    medians = result["medians"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in targets:
        per = [medians.get(w["key"], {}).get(name, {}) for w in sweep]
        tps = [p.get("output_tokens_per_s", math.nan) for p in per]
        left.plot(levels, tps, marker="o", label=name)
        p50 = [p.get("ttft_p50_ms", math.nan) for p in per]
        p99 = [p.get("ttft_p99_ms", math.nan) for p in per]
        (line,) = right.plot(levels, p50, marker="o", label=f"{name} p50")
        right.plot(levels, p99, marker="x", linestyle=":", color=line.get_color(), label="p99")
    batched = result["batched_bench_medians"]
    if batched:
        xs = [lv for lv in levels if str(lv) in batched]
        left.plot(xs, [batched[str(x)] for x in xs], "k--", marker=".", label="llama-batched-bench")
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(levels, [str(lv) for lv in levels])
        axis.set_xlabel("concurrent streams")
        axis.grid(True, alpha=0.3)
    left.set_ylabel("aggregate output tokens/s")
    left.set_title("Throughput")
    left.legend()
    right.set_yscale("log")
    right.set_ylabel("time to first token (ms)")
    right.set_title("TTFT (solid p50, dotted p99)")
    right.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

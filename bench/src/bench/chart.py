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
    first, head = sweep[0]["prompt"], sweep[0]["shape"]
    sweep = [w for w in sweep if w["prompt"] == first]
    shapes = list(dict.fromkeys(w["shape"] for w in sweep))
    medians = result["medians"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in targets:
        color = None
        for shape in shapes:
            runs = [w for w in sweep if w["shape"] == shape]
            xs = [w["concurrency"] for w in runs]
            per = [medians.get(w["key"], {}).get(name, {}) for w in runs]
            tps = [p.get("output_tokens_per_s", math.nan) for p in per]
            style = "-" if shape == head else "--"
            (line,) = left.plot(xs, tps, style, marker="o", color=color, label=f"{name} {shape}")
            color = line.get_color()
            if shape != head:
                continue
            p50 = [p.get("ttft_p50_ms", math.nan) for p in per]
            p99 = [p.get("ttft_p99_ms", math.nan) for p in per]
            right.plot(xs, p50, marker="o", color=color, label=f"{name} p50")
            right.plot(xs, p99, marker="x", linestyle=":", color=color, label="p99")
    levels = sorted({w["concurrency"] for w in sweep})
    batched = result["batched_bench_medians"]
    if batched:
        xs = [lv for lv in levels if f"{first}:{lv}" in batched]
        ys = [batched[f"{first}:{x}"] for x in xs]
        left.plot(xs, ys, "k--", marker=".", label="llama-batched-bench")
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
    right.set_title(f"TTFT, {head} request (solid p50, dotted p99)")
    right.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

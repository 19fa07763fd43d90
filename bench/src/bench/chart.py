"""The PNG chart: throughput and TTFT against concurrency (closed loop, first prompt length)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter


def chart(result: dict[str, Any], targets: list[str], path: Path, title: str) -> None:
    """`path`: aggregate output tokens/s and TTFT p50/p99 against the closed loop's streams
    (nothing is written when the run had no closed loop)."""
    fig, axes = panels(1, 2, 12)
    if closed_panels(axes[0][0], axes[0][1], result, targets):
        save(fig, path, title)
    else:
        plt.close(fig)


def closed_panels(left: Axes, right: Axes, result: dict[str, Any], targets: list[str]) -> bool:
    """Throughput (`left`) and TTFT (`right`) per target against concurrency, from bench.runner's
    result (its first prompt length; every shape's throughput, the first shape's TTFT);
    False when there is no closed loop to draw."""
    sweep = [w for w in result["workloads"] if w["kind"] == "closed"]
    if not sweep:
        return False
    first, head = sweep[0]["prompt"], sweep[0]["shape"]
    sweep = [w for w in sweep if w["prompt"] == first]
    shapes = list(dict.fromkeys(w["shape"] for w in sweep))
    medians = result["medians"]
    for name in targets:
        color = None
        for shape in shapes:
            runs = [w for w in sweep if w["shape"] == shape]
            xs = [w["concurrency"] for w in runs]
            per = [medians.get(w["key"], {}).get(name, {}) for w in runs]
            tps = [number(p.get("output_tokens_per_s")) for p in per]
            style = "-" if shape == head else "--"
            (line,) = left.plot(xs, tps, style, marker="o", color=color, label=f"{name} {shape}")
            color = line.get_color()
            if shape != head:
                continue
            p50 = [number(p.get("ttft_p50_ms")) for p in per]
            p99 = [number(p.get("ttft_p99_ms")) for p in per]
            right.plot(xs, p50, marker="o", color=color, label=f"{name} p50")
            right.plot(xs, p99, marker="x", linestyle=":", color=color, label="p99")
    levels = sorted({w["concurrency"] for w in sweep})
    batched = result.get("batched_bench_medians") or {}
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
    plain_log_axis(right)
    right.set_ylabel("time to first token (ms)")
    right.set_title(f"TTFT, {head} request (solid p50, dotted p99)")
    right.legend(fontsize=7, ncol=2)
    return True


class PlainLogFormatter(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as plain numbers (1,000 and
    900, not 10³ and 9×10²)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:,.0f}" if super().__call__(x, pos) else ""


def plain_log_axis(axis: Axes) -> None:
    """A log y axis labelled in plain numbers, minor ticks too when the range is narrow."""
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(PlainLogFormatter())
    axis.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.tick_params(axis="y", which="minor", labelsize=7)


def number(value: Any) -> float:
    """A figure as a float: NaN when it is missing (None, as a JSON file has NaN, or absent)."""
    return float(value) if isinstance(value, int | float) else math.nan


def panels(rows: int, columns: int, width: float) -> tuple[Figure, Any]:
    """A figure of `rows` × `columns` panels (indexed [row][column]), 4.8 inches per row."""
    return plt.subplots(rows, columns, figsize=(width, 4.8 * rows), squeeze=False)


def save(fig: Figure, path: Path, title: str) -> None:
    """`fig` written to `path` under `title`, then closed."""
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""PNG charts of the conversation workload (turn by turn: TTFT, prompt reuse, host-memory cache)
and of `python -m bench.stack` (the closed loop against its streams, then the conversation
workload turn by turn), drawn from the result each harness writes as JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from bench.chart import closed_panels, number, panels, plain_log_axis, save

Medians = dict[str, dict[str, Any]]


def turn_series(medians: Medians, name: str, figure: str, turns: int) -> list[float]:
    """`figure` of turns 1..`turns` for target `name` (NaN where it has none)."""
    per = medians.get(name, {})
    return [number(per.get(f"turn{k}_{figure}")) for k in range(1, turns + 1)]


def _turn_axis(axis: Axes, turns: int) -> None:
    axis.set_xticks(range(1, turns + 1))
    axis.set_xlabel("turn")
    axis.grid(True, alpha=0.3)


def ttft_panel(axis: Axes, medians: Medians, targets: list[str], turns: int) -> None:
    """TTFT p50 (solid) and p99 (dashed) per turn, one colour per target."""
    xs = range(1, turns + 1)
    for i, name in enumerate(targets):
        color = f"C{i}"
        p50 = turn_series(medians, name, "ttft_p50_ms", turns)
        p99 = turn_series(medians, name, "ttft_p99_ms", turns)
        errors = sum(v for v in turn_series(medians, name, "errors", turns) if not math.isnan(v))
        label = f"{name} p50" + (f" ({errors:.0f} errors)" if errors else "")
        axis.plot(xs, p50, "-", marker="o", color=color, label=label)
        axis.plot(xs, p99, "--", marker="x", color=color, label="p99")
    _turn_axis(axis, turns)
    plain_log_axis(axis)
    axis.set_ylabel("time to first token (ms)")
    axis.set_title("TTFT per turn (solid p50, dashed p99)")
    axis.legend(fontsize=7, ncol=2)


def reuse_panel(axis: Axes, medians: Medians, targets: list[str], turns: int) -> None:
    """The share of each turn's prompt tokens the server reused rather than recomputed."""
    xs = range(1, turns + 1)
    for i, name in enumerate(targets):
        shares = [100 * v for v in turn_series(medians, name, "reused_fraction", turns)]
        reported = any(not math.isnan(v) for v in shares)
        label = name if reported else f"{name} (not reported)"
        axis.plot(xs, shares, "-", marker="o", color=f"C{i}", label=label)
    _turn_axis(axis, turns)
    axis.set_ylim(0, 100)
    axis.set_ylabel("prompt tokens reused (%)")
    axis.set_title("Prompt reuse per turn")
    axis.legend(fontsize=7)


def has_cache_figures(medians: Medians, targets: list[str]) -> bool:
    """Whether any target reported its host-memory cache (runs before it was measured did not)."""
    return any(
        not math.isnan(number(medians.get(n, {}).get(k)))
        for n in targets
        for k in ("cache_mib_peak", "cache_mib_end")
    )


def cache_panel(axis: Axes, medians: Medians, targets: list[str]) -> None:
    """MiB the host-memory prompt cache held at its peak and at the end, per target, labelled
    with the share of turns 2+'s prompt tokens it reused (the memory is for that hit rate)."""
    xs = range(len(targets))
    colors = [f"C{i}" for i in xs]
    for offset, key, alpha in ((-0.2, "cache_mib_peak", 1.0), (0.2, "cache_mib_end", 0.45)):
        values = [number(medians.get(n, {}).get(key)) for n in targets]
        bars = axis.bar([x + offset for x in xs], values, 0.4, color=colors, alpha=alpha)
        axis.bar_label(bars, fmt="{:.0f}", fontsize=7)  # no label on a NaN (no bar)
    names = []
    for name in targets:
        share = number(medians.get(name, {}).get("later_reused_fraction"))
        names.append(name if math.isnan(share) else f"{name}\n{share:.0%} reused, turns 2+")
    axis.set_xticks(list(xs), names, fontsize=8)
    axis.set_ylabel("host-memory prompt cache (MiB)")
    axis.set_title("Cache held (solid peak, pale end)")
    axis.grid(True, axis="y", alpha=0.3)


def turn_count(config: dict[str, Any]) -> int:
    """The run's turns per user (runs before `config.turns` existed have only `args.turns`)."""
    return int(config.get("turns") or config["args"]["turns"])


def conversation_title(config: dict[str, Any]) -> str:
    """The run in one line: users, turns, slots, cache budget, prompt size, rounds, date."""
    args = config.get("args", {})
    return (
        f"conversations: {args.get('users')} users × {turn_count(config)} turns, "
        f"{args.get('slots')} slots, {args.get('cache_mib')} MiB cache budget, last prompt ≈ "
        f"{config.get('last_prompt_tokens_about')} tokens; median of {args.get('rounds')} "
        f"round(s); {config.get('date')}"
    )


def conversation_chart(result: dict[str, Any], targets: list[str], path: Path) -> None:
    """`path`: per turn, TTFT p50/p99 and prompt reuse per target, and the cache each held
    (that panel only when some target reported it)."""
    medians: Medians = result["medians"]
    turns = turn_count(result["config"])
    cache = has_cache_figures(medians, targets)
    fig, axes = panels(1, 3 if cache else 2, 16 if cache else 12)
    ttft_panel(axes[0][0], medians, targets, turns)
    reuse_panel(axes[0][1], medians, targets, turns)
    if cache:
        cache_panel(axes[0][2], medians, targets)
    save(fig, path, conversation_title(result["config"]))


def stack_chart(result: dict[str, Any], targets: list[str], path: Path) -> None:
    """`path`: a row for the closed loop (output tokens/s and TTFT p50/p99 against streams)
    and a row for the conversation workload (TTFT and reuse per turn), for the parts that ran."""
    closed = result.get("closed")
    conv = result.get("conversation")
    has_closed = bool(closed and any(w["kind"] == "closed" for w in closed["workloads"]))
    rows = int(has_closed) + int(bool(conv))
    if not rows:
        return
    fig, axes = panels(rows, 2, 12)
    titles = [f"{' vs '.join(targets)}, {result.get('config', {}).get('date')}"]
    if closed and has_closed:
        closed_panels(axes[0][0], axes[0][1], closed, targets)
        for axis in axes[0]:
            axis.set_title(f"Closed loop: {axis.get_title()}")
        args = result.get("config", {}).get("args", {})
        titles.append(f"closed loop: median of {args.get('rounds')} round(s)")
    if conv:
        turns = turn_count(conv["config"])
        ttft_panel(axes[rows - 1][0], conv["medians"], targets, turns)
        reuse_panel(axes[rows - 1][1], conv["medians"], targets, turns)
        titles.append(conversation_title(conv["config"]))
    save(fig, path, "\n".join(titles))

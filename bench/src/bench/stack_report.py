"""`python -m bench.stack`'s figures side by side: the closed loop per level, the conversation
workload, the ratios stack / litellm and the issue's targets met or not."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.conv_report import cell, conversation_markdown

OURS, PEER = "stack", "litellm"

CLOSED_COLUMNS = (
    ("ttft_p50_ms", "TTFT p50 ms", "{:.0f}"),
    ("ttft_p99_ms", "TTFT p99 ms", "{:.0f}"),
    ("output_tokens_per_s", "out tok/s", "{:.1f}"),
    ("tpot_ms", "per token ms", "{:.1f}"),
    ("itl_p50_ms", "ITL p50 ms", "{:.1f}"),
    ("itl_p99_ms", "ITL p99 ms", "{:.0f}"),
    ("requests", "requests", "{:.0f}"),
    ("errors", "errors", "{:.0f}"),
    ("token_mismatches", "token check ✗", "{:.0f}"),
    ("rss_peak_mb", "RSS peak MB", "{:.0f}"),
    ("cpu_percent", "CPU %", "{:.0f}"),
)
RATIO_KEYS = ("ttft_p50_ms", "ttft_p99_ms", "output_tokens_per_s", "tpot_ms", "rss_peak_mb")


@dataclass(frozen=True)
class Goal:
    """One of the issue's targets: `ratio` (stack / litellm) compared with `bound`."""

    what: str
    workload: str  # key into the medians
    figure: str
    bound: float
    at_most: bool  # True: ratio ≤ bound is met; False: ratio ≥ bound

    def verdict(self, medians: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
        value = ratio(medians.get(self.workload, {}), self.figure)
        met = (
            None
            if math.isnan(value)
            else (value <= self.bound if self.at_most else value >= self.bound)
        )
        sign = "≤" if self.at_most else "≥"
        return {"target": f"{self.what} {sign} {self.bound:g}×", "ratio": value, "met": met}


def ratio(per_target: dict[str, dict[str, float]], figure: str) -> float:
    """stack's figure / litellm's (NaN when either is missing or litellm's is 0)."""
    ours = per_target.get(OURS, {}).get(figure, math.nan)
    peer = per_target.get(PEER, {}).get(figure, math.nan)
    return ours / peer if peer and not math.isnan(peer) else math.nan


def goals(closed_keys: list[str]) -> list[Goal]:
    """The issue's targets for the whole stack: at 16 and 32 streams of the `sdk` request TTFT
    p99 ≤ 0.8× and output tokens/s ≥ 1.0×; conversations, turns 2+: TTFT p50 ≤ 0.8×, p99
    ≤ 0.7×. Only the closed-loop levels that ran are judged."""
    out = []
    for c in (16, 32):
        key = next(
            (k for k in closed_keys if k.startswith(f"closed c={c} ") and k.endswith(" sdk")), None
        )
        if key:
            out += [
                Goal(f"{c} streams TTFT p99", key, "ttft_p99_ms", 0.8, at_most=True),
                Goal(f"{c} streams out tok/s", key, "output_tokens_per_s", 1.0, at_most=False),
            ]
    return [
        *out,
        Goal("conversations turns 2+ TTFT p50", "conversations", "later_ttft_p50_ms", 0.8, True),
        Goal("conversations turns 2+ TTFT p99", "conversations", "later_ttft_p99_ms", 0.7, True),
    ]


def verdicts(
    medians: dict[str, dict[str, dict[str, float]]], closed_keys: list[str]
) -> list[dict[str, Any]]:
    """Every goal whose workload ran, with its ratio and met (True/False; None: no figure)."""
    return [g.verdict(medians) for g in goals(closed_keys) if g.workload in medians]


def _closed_table(closed: dict[str, Any]) -> list[str]:
    medians = closed["medians"]
    lines = [
        "### Closed loop",
        "",
        "| workload | target | " + " | ".join(c[1] for c in CLOSED_COLUMNS) + " |",
        "|---|---|" + "---|" * len(CLOSED_COLUMNS),
    ]
    for workload in closed["workloads"]:
        per = medians.get(workload["key"], {})
        for name in (OURS, PEER):
            cells = " | ".join(cell(per.get(name), k, f) for k, _, f in CLOSED_COLUMNS)
            lines.append(f"| {workload['key']} | {name} | {cells} |")
        ratios = " | ".join(
            _num(ratio(per, k)) if k in RATIO_KEYS else "" for k, _, _ in CLOSED_COLUMNS
        )
        lines.append(f"| {workload['key']} | **{OURS} / {PEER}** | {ratios} |")
    return lines


def _num(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def _verdict_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### The issue's targets (stack / litellm)",
        "",
        "| target | ratio | |",
        "|---|---|---|",
    ]
    for row in rows:
        met = {True: "**met**", False: "**not met**", None: "no figure"}[row["met"]]
        lines.append(f"| {row['target']} | {_num(row['ratio'])} | {met} |")
    return lines


def stack_markdown(result: dict[str, Any], header: str) -> str:
    """The closed-loop table with ratio rows, the conversation tables, then the targets."""
    lines = [header, ""]
    if closed := result.get("closed"):
        lines += [*_closed_table(closed), ""]
    if conv := result.get("conversation"):
        lines += ["### Conversations", ""]
        lines.append(conversation_markdown(conv, [OURS, PEER], conv["config"]["turns"], OURS, PEER))
    lines += _verdict_table(result["verdicts"])
    return "\n".join(lines) + "\n"

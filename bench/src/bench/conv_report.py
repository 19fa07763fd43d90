"""The conversation workload's markdown: the run per target, then turn by turn."""

from __future__ import annotations

import math
from typing import Any

OURS, REFERENCE = "llm-server", "llama-server"

RUN_COLUMNS = (
    ("answers", "answers", "{:.0f}"),
    ("errors", "errors", "{:.0f}"),
    ("token_mismatches", "token check ✗", "{:.0f}"),
    ("output_tokens_per_s", "out tok/s", "{:.1f}"),
    ("later_ttft_p50_ms", "turns 2+ TTFT p50 ms", "{:.0f}"),
    ("later_ttft_p99_ms", "turns 2+ TTFT p99 ms", "{:.0f}"),
    ("later_reused_fraction", "turns 2+ prompt reused", "{:.0%}"),
    ("later_reused_tokens", "turns 2+ tokens reused", "{:.0f}"),
    ("cache_mib_peak", "cache MiB held, peak", "{:.1f}"),
    ("cache_mib_end", "cache MiB held, end", "{:.1f}"),
    ("rss_peak_mb", "RSS peak MB", "{:.0f}"),
    ("rss_end_mb", "RSS at end MB", "{:.0f}"),
    ("cpu_percent", "CPU %", "{:.0f}"),
)
TURN_COLUMNS = (
    ("ttft_p50_ms", "TTFT p50 ms", "{:.0f}"),
    ("ttft_p99_ms", "TTFT p99 ms", "{:.0f}"),
    ("decode_tokens_per_s", "decode tok/s per answer", "{:.1f}"),
    ("prompt_tokens_mean", "prompt tokens (mean)", "{:.0f}"),
    ("reused_tokens", "reused", "{:.0f}"),
    ("recomputed_tokens", "recomputed", "{:.0f}"),
    ("reused_fraction", "reused %", "{:.0%}"),
    ("errors", "errors", "{:.0f}"),
)


def cell(figures: dict[str, Any] | None, key: str, form: str) -> str:
    value = (figures or {}).get(key)
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return form.format(value)


def _ratio(medians: dict[str, Any], key: str, ours_name: str, ref_name: str) -> str:
    ours = medians.get(ours_name, {}).get(key, math.nan)
    ref = medians.get(ref_name, {}).get(key, math.nan)
    value = ours / ref if ref else math.nan
    return "–" if math.isnan(value) else f"{value:.2f}"


def conversation_markdown(
    result: dict[str, Any],
    targets: list[str],
    turns: int,
    ours: str = OURS,
    reference: str = REFERENCE,
) -> str:
    """Tables of the medians over rounds, with the ratios `ours` / `reference`; reuse is "–"
    where a server does not report it."""
    medians: dict[str, dict[str, Any]] = result["medians"]
    config = result["config"]

    def ratio(key: str) -> str:
        return _ratio(medians, key, ours, reference)

    lines = [
        f"Conversation workload: `{config['command']}` on {config['date']} "
        f"({config['minutes']:.1f} min), last prompt ≈ {config['last_prompt_tokens_about']} "
        "tokens. Medians over rounds.",
        "",
        "| target | " + " | ".join(c[1] for c in RUN_COLUMNS) + " |",
        "|---|" + "---|" * len(RUN_COLUMNS),
    ]
    for name in targets:
        per = medians.get(name)
        lines.append(f"| {name} | " + " | ".join(cell(per, k, f) for k, _, f in RUN_COLUMNS) + " |")
    lines += [
        "",
        f"{ours} / {reference}: turns 2+ TTFT p50 {ratio('later_ttft_p50_ms')}, "
        f"p99 {ratio('later_ttft_p99_ms')}; out tok/s "
        f"{ratio('output_tokens_per_s')}; RSS peak {ratio('rss_peak_mb')}; host cache MiB "
        f"peak {ratio('cache_mib_peak')} for tokens reused {ratio('later_reused_tokens')}.",
        "",
        "| turn | target | " + " | ".join(c[1] for c in TURN_COLUMNS) + " |",
        "|---|---|" + "---|" * len(TURN_COLUMNS),
    ]
    for k in range(1, turns + 1):
        for name in targets:
            per = {
                key.removeprefix(f"turn{k}_"): value
                for key, value in medians.get(name, {}).items()
                if key.startswith(f"turn{k}_")
            }
            cells = " | ".join(cell(per, key, f) for key, _, f in TURN_COLUMNS)
            lines.append(f"| {k} | {name} | {cells} |")
    return "\n".join(lines) + "\n"

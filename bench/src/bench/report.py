"""The markdown tables."""

from __future__ import annotations

import math
from typing import Any

COLUMNS = (
    ("output_tokens_per_s", "out tok/s", "{:.1f}"),
    ("requests_per_s", "req/s", "{:.2f}"),
    ("ttft_p50_ms", "TTFT p50 ms", "{:.0f}"),
    ("ttft_p99_ms", "TTFT p99 ms", "{:.0f}"),
    ("tpot_ms", "TPOT ms", "{:.1f}"),
    ("itl_p99_ms", "ITL p99 ms", "{:.0f}"),
    ("e2e_p50_ms", "E2E p50 ms", "{:.0f}"),
    ("e2e_p95_ms", "E2E p95 ms", "{:.0f}"),
    ("e2e_p99_ms", "E2E p99 ms", "{:.0f}"),
    ("rss_peak_mb", "RSS peak MB", "{:.0f}"),
    ("cpu_percent", "CPU %", "{:.0f}"),
    ("errors", "errors", "{:.0f}"),
    ("token_mismatches", "token check ✗", "{:.0f}"),
    ("short_completions", "short", "{:.0f}"),
)
OURS, REFERENCE, PYTHON = "llm-server", "llama-server", "llama-cpp-python"


def _cell(figures: dict[str, float] | None, key: str, form: str = "{:.1f}") -> str:
    if not figures or key not in figures or math.isnan(figures[key]):
        return "–"
    return form.format(figures[key])


def _num(value: float, form: str = "{:.2f}") -> str:
    return "–" if math.isnan(value) else form.format(value)


def _section(workload: dict[str, Any], measured: dict[int, float]) -> str:
    if workload["kind"] == "closed":
        prompt = workload["prompt"]
        return f"Closed loop, prompt ≈ {prompt} tokens (measured {measured.get(prompt, 0):.0f})"
    if workload["kind"] == "poisson":
        return "Poisson arrivals"
    return "A long prompt arriving while streams decode"


def markdown(result: dict[str, Any], targets: list[str], header: str) -> str:
    medians: dict[str, dict[str, dict[str, float]]] = result["medians"]
    batched: dict[str, float] = result["batched_bench_medians"]
    measured = {int(k): v for k, v in result["prompt_tokens_measured"].items()}
    lines = [header, ""]
    section = ""
    for workload in result["workloads"]:
        title = _section(workload, measured)
        per_target = medians.get(workload["key"], {})
        if title != section:
            section = title
            lines += ["", f"### {title}", ""]
            if workload["kind"] == "interference":
                lines += [
                    "| workload | target | worst stream: max gap / median gap | median over "
                    "streams | long prompt TTFT ms | streams' out tok/s | ITL p99 ms |",
                    "|---|---|---|---|---|---|---|",
                ]
            else:
                lines += [
                    "| workload | target | " + " | ".join(c[1] for c in COLUMNS) + " | × batched |",
                    "|---|---|" + "---|" * (len(COLUMNS) + 1),
                ]
        for name in targets:
            figures = per_target.get(name)
            label = workload["key"]
            if workload["kind"] == "interference":
                lines.append(
                    f"| {label} | {name} | {_cell(figures, 'stall_ratio_max', '{:.1f}')} | "
                    f"{_cell(figures, 'stall_ratio_median', '{:.1f}')} | "
                    f"{_cell(figures, 'long_prompt_ttft_ms', '{:.0f}')} | "
                    f"{_cell(figures, 'output_tokens_per_s')} | "
                    f"{_cell(figures, 'itl_p99_ms', '{:.0f}')} |"
                )
                continue
            cells = [_cell(figures, key, form) for key, _, form in COLUMNS]
            ceiling = batched.get(f"{workload['prompt']}:{workload['concurrency']}")
            fraction = "–"
            if workload["kind"] == "closed" and ceiling and figures:
                fraction = f"{figures.get('output_tokens_per_s', math.nan) / ceiling:.2f}"
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {fraction} |")
    lines += ["", *_ratios(result, targets)]
    return "\n".join(lines) + "\n"


def _ratios(result: dict[str, Any], targets: list[str]) -> list[str]:
    """Aggregate output tokens/s side by side, as ratios and as fractions of the ceiling."""
    medians = result["medians"]
    batched: dict[str, float] = result["batched_bench_medians"]
    rows = []
    for workload in result["workloads"]:
        if workload["kind"] != "closed":
            continue
        per = medians.get(workload["key"], {})
        tps = {t: per.get(t, {}).get("output_tokens_per_s", math.nan) for t in targets}
        ttft99 = {t: per.get(t, {}).get("ttft_p99_ms", math.nan) for t in targets}
        ceiling = batched.get(f"{workload['prompt']}:{workload['concurrency']}", math.nan)
        cells = [_num(tps[t], "{:.1f}") for t in targets]
        ratio_ref = tps.get(OURS, math.nan) / tps.get(REFERENCE, math.nan)
        ratio_py = tps.get(OURS, math.nan) / tps.get(PYTHON, math.nan)
        ttft_ratio = ttft99.get(OURS, math.nan) / ttft99.get(REFERENCE, math.nan)
        rows.append(
            f"| {workload['key']} | "
            + " | ".join(cells)
            + f" | {_num(ceiling, '{:.1f}')} | {_num(ratio_ref)} | {_num(ratio_py)} | "
            + f"{_num(ttft_ratio)} |"
        )
    if not rows:
        return []
    return [
        "### Side by side (aggregate output tokens/s)",
        "",
        "| workload | "
        + " | ".join(targets)
        + " | llama-batched-bench | ours / llama-server | ours / llama-cpp-python "
        "| TTFT p99 ours / llama-server |",
        "|---|" + "---|" * (len(targets) + 4),
        *rows,
    ]

"""Runs the plan: rounds × workloads × targets, one server at a time, alternating targets
within each workload so that background noise falls on all of them; then medians."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.batched import batched_bench
from bench.load import closed_loop, interference, poisson, warm_up
from bench.metrics import check_tokens, stall_ratios, summarize
from bench.plan import Workload
from bench.procstats import ProcSampler
from bench.prompts import PromptPool
from bench.shapes import SHAPES
from bench.targets import STARTERS, ServerConfig, Starter


@dataclass(frozen=True)
class RunSettings:
    model: Path
    threads: int
    targets: list[str]
    plan: list[Workload]
    rounds: int
    duration: float
    min_requests: int
    batched_levels: list[int]  # empty: no llama-batched-bench
    logs: Path
    eog_tokens: tuple[int, ...]
    count_tokens: Callable[[str], int]  # the model's tokenizer, for the token-count check
    flash_attn: bool = True
    natural_eos: bool = False  # send no end-of-generation control (answers end where they end)
    starters: Mapping[str, Starter] = field(default_factory=lambda: dict(STARTERS))


def target_order(targets: list[str], round_index: int) -> list[str]:
    """The targets in the given order in even rounds, reversed in odd ones, so that no target
    is always measured first (or always right after the same one)."""
    return list(targets) if round_index % 2 == 0 else list(reversed(targets))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _measure(
    settings: RunSettings, workload: Workload, target_name: str, pool: PromptPool
) -> dict[str, Any]:
    config = ServerConfig(
        settings.model,
        settings.threads,
        workload.parallel,
        workload.per_sequence,
        settings.logs,
        settings.eog_tokens,
        flash_attn=settings.flash_attn,
    )
    shape = SHAPES[workload.shape]
    target = settings.starters[target_name](config)
    if settings.natural_eos:
        target.extra_body = {}
    try:
        await warm_up(target, pool, workload.prompt, shape)
        sampler = ProcSampler(*target.pids)
        load_before = os.getloadavg()[0]
        sampler.start()
        extra: dict[str, Any] = {}
        if workload.kind == "closed":
            records = await closed_loop(
                target,
                pool,
                workload.concurrency,
                workload.prompt,
                workload.max_tokens,
                settings.duration,
                settings.min_requests,
                shape,
            )
        elif workload.kind == "poisson":
            records = await poisson(
                target,
                pool,
                workload.rate,
                workload.prompt,
                workload.max_tokens,
                settings.duration,
                shape,
            )
        else:
            result = await interference(
                target,
                pool,
                workload.concurrency,
                workload.prompt,
                workload.max_tokens,
                workload.long_prompt,
                shape,
            )
            records = result.streams
            ratios = stall_ratios(result.streams, result.arrival)
            extra = {
                "stall_ratios": ratios,
                "stall_ratio_max": max(ratios, default=float("nan")),
                "stall_ratio_median": statistics.median(ratios) if ratios else float("nan"),
                "long_prompt_ttft_ms": 1000 * result.long.ttft if result.long.ok else float("nan"),
            }
        proc = await sampler.stop()
    finally:
        target.stop()
    check_tokens(records, settings.count_tokens)
    summary = summarize(records)
    return {
        **summary,
        **extra,
        "rss_peak_mb": proc.rss_peak_mb,
        "rss_mean_mb": proc.rss_mean_mb,
        "cpu_percent": proc.cpu_percent,
        "loadavg_1m": [load_before, os.getloadavg()[0]],
    }


async def run(settings: RunSettings, pool: PromptPool) -> dict[str, Any]:
    measurements: list[dict[str, Any]] = []
    batched: list[dict[str, dict[str, Any]]] = []
    for round_index in range(settings.rounds):
        for workload in settings.plan:
            for name in target_order(settings.targets, round_index):
                log(f"round {round_index + 1}/{settings.rounds}  {workload.key}  {name}")
                try:
                    figures = await _measure(settings, workload, name, pool)
                except Exception as error:  # a target failing must not lose the others
                    figures = {"failed": f"{type(error).__name__}: {error}"}
                log(f"    {_brief(figures)}")
                measurements.append(
                    {"round": round_index, "workload": workload.key, "target": name, **figures}
                )
        if settings.batched_levels:
            batched.append(_batched_round(settings, round_index))
    return {
        "workloads": [{"key": w.key, **asdict(w)} for w in settings.plan],
        "measurements": measurements,
        "batched_bench": batched,
        "medians": medians(measurements),
        "batched_bench_medians": {
            key: statistics.median(b[key]["speed_tg"] for b in batched if key in b)
            for key in sorted({k for b in batched for k in b})
        },
    }


def batched_key(prompt: int, level: int) -> str:
    """llama-batched-bench's results are keyed by prompt length and batch size."""
    return f"{prompt}:{level}"


def batched_plan(plan: list[Workload]) -> dict[int, list[int]]:
    """Prompt length → the batch sizes the closed loops ran at that length."""
    levels: dict[int, set[int]] = {}
    for w in plan:
        if w.kind == "closed":
            levels.setdefault(w.prompt, set()).add(w.concurrency)
    return {prompt: sorted(levels[prompt]) for prompt in sorted(levels)}


def _batched_round(settings: RunSettings, round_index: int) -> dict[str, dict[str, Any]]:
    """llama-batched-bench at every prompt length the closed loops ran, at the levels each
    ran at, so that every "× batched" figure divides by a ceiling of the same prompt length."""
    out: dict[str, dict[str, Any]] = {}
    for prompt, levels in batched_plan(settings.plan).items():
        log(f"round {round_index + 1}/{settings.rounds}  llama-batched-bench prompt={prompt}")
        rows = batched_bench(
            settings.model,
            settings.threads,
            levels,
            prompt,
            settings.plan[0].max_tokens,
            settings.logs,
        )
        out.update({batched_key(prompt, level): row for level, row in rows.items()})
    return out


def _brief(figures: dict[str, Any]) -> str:
    if "failed" in figures:
        return f"FAILED {figures['failed']}"
    keys = (
        "output_tokens_per_s",
        "ttft_p50_ms",
        "ttft_p99_ms",
        "errors",
        "token_mismatches",
        "stall_ratio_max",
    )
    return "  ".join(f"{k}={figures[k]:.4g}" for k in keys if k in figures)


def token_failures(measurements: list[dict[str, Any]]) -> list[str]:
    """One line per measurement whose answers' token counts did not match (the run fails)."""
    return [
        f"{m['workload']} {m['target']} round {m['round'] + 1}: {m['token_mismatches']} "
        f"mismatched, first: {m.get('first_token_mismatch')}"
        for m in measurements
        if m.get("token_mismatches")
    ]


def medians(measurements: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """workload → target → the median over rounds of every numeric figure."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in measurements:
        grouped.setdefault((m["workload"], m["target"]), []).append(m)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (workload, target), runs in grouped.items():
        keys = {k for r in runs for k, v in r.items() if isinstance(v, int | float)}
        keys.discard("round")
        out.setdefault(workload, {})[target] = {
            k: statistics.median(r[k] for r in runs if k in r) for k in sorted(keys)
        }
        out[workload][target]["rounds"] = len(runs)
        out[workload][target]["failed_rounds"] = sum(1 for r in runs if "failed" in r)
    return out


def run_sync(settings: RunSettings, pool: PromptPool) -> dict[str, Any]:
    return asyncio.run(run(settings, pool))

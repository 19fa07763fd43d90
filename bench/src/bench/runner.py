"""Runs the plan: rounds × workloads × targets, one server at a time, alternating targets
within each workload so that background noise falls on all of them; then medians."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.batched import batched_bench
from bench.load import closed_loop, interference, poisson, warm_up
from bench.metrics import stall_ratios, summarize
from bench.plan import Workload
from bench.procstats import ProcSampler
from bench.prompts import PromptPool
from bench.targets import STARTERS, ServerConfig


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
    )
    target = STARTERS[target_name](config)
    try:
        await warm_up(target, pool, workload.prompt)
        sampler = ProcSampler(target.pid)
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
            )
        elif workload.kind == "poisson":
            records = await poisson(
                target, pool, workload.rate, workload.prompt, workload.max_tokens, settings.duration
            )
        else:
            result = await interference(
                target,
                pool,
                workload.concurrency,
                workload.prompt,
                workload.max_tokens,
                workload.long_prompt,
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
    batched: list[dict[int, dict[str, Any]]] = []
    lengths = sorted({w.prompt for w in settings.plan if w.kind == "closed"})
    for round_index in range(settings.rounds):
        for workload in settings.plan:
            for name in settings.targets:
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
            log(f"round {round_index + 1}/{settings.rounds}  llama-batched-bench")
            max_tokens = settings.plan[0].max_tokens
            batched.append(
                batched_bench(
                    settings.model,
                    settings.threads,
                    settings.batched_levels,
                    lengths[0] if lengths else 32,
                    max_tokens,
                    settings.logs,
                )
            )
    return {
        "workloads": [{"key": w.key, **asdict(w)} for w in settings.plan],
        "measurements": measurements,
        "batched_bench": batched,
        "medians": medians(measurements),
        "batched_bench_medians": {
            str(level): statistics.median(b[level]["speed_tg"] for b in batched if level in b)
            for level in settings.batched_levels
        }
        if batched
        else {},
    }


def _brief(figures: dict[str, Any]) -> str:
    if "failed" in figures:
        return f"FAILED {figures['failed']}"
    keys = ("output_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "errors", "stall_ratio_max")
    return "  ".join(f"{k}={figures[k]:.4g}" for k in keys if k in figures)


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

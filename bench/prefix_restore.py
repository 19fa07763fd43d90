"""Time to first token of a conversation history evicted from llm-server's KV context by other
traffic and resent: restored from the host-memory prefix cache vs read again (prefill).

In-process, on llm-server's engine (no HTTP): run with llm-server's venv from the repository
root, `llm-server/.venv/bin/python bench/prefix_restore.py [--history-tokens 2000]`.

`--streams N` measures instead what a restore costs the other streams (issue 14: "a restore
never lifts another stream's worst inter-token gap above 3x its median"): N streams decode
(`completions`-style sampling, end of text ignored, `--stream-tokens` each) while `--restores`
histories, evicted by other long prompts beforehand, are resent one after another; per stream
its largest inter-token gap after the first resend over its median gap then (as the harness's
interference figure), with the cache off (each history read again) and on (restored).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm_server.config import Settings
from llm_server.engine import PrefixCacheStats
from llm_server.engine.llama import LlamaEngine
from llm_server.engine.types import SamplingParams, TokenOut

ONE = SamplingParams(max_tokens=1, temperature=0)
# Tokens of one stream delivered this close together came in one delivery (one decode step:
# guessed tokens the model confirmed arrive with the step's own); a gap is between deliveries.
SAME_DELIVERY_S = 0.001


async def first_token_s(engine: LlamaEngine, tokens: list[int]) -> tuple[float, int]:
    """Seconds to the first token, and the prompt tokens not recomputed."""
    started = time.perf_counter()
    first = None
    async for event in engine.start(tokens, ONE, "bench").events():
        if isinstance(event, TokenOut):
            first = first or time.perf_counter() - started
        else:
            assert first is not None, event
            return first, event.cached_prompt_tokens
    raise AssertionError("no Finished event")


async def measure(
    cache_bytes: int, history: int, rounds: int
) -> tuple[list[tuple[float, int]], PrefixCacheStats]:
    engine = LlamaEngine(
        Settings(
            app_env="test",
            n_ctx=2 * history + 512,  # room for the history and one other, not two others
            context_length=2 * history,
            max_running=1,
            prefix_cache_bytes=cache_bytes,
        )
    )
    await asyncio.to_thread(engine.load)
    try:
        text = " ".join(
            f"turn {i}: the user asks about item {i * 7 % 101}." for i in range(history)
        )
        base = engine.tokenize(text)[:history]
        others = [engine.tokenize(f"Other user {i}: " + text[::-1])[:history] for i in range(2)]
        results = []
        for round_ in range(rounds):
            await first_token_s(engine, base)
            for other in others:  # other traffic evicts the history from the context
                await first_token_s(engine, other)
            question = engine.tokenize(f" Round {round_}: and what next?", add_special=False)
            results.append(await first_token_s(engine, base + question))
        return results, engine.load_stats().prefix_cache
    finally:
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=0, help="decoding streams (0: TTFT only)")
    parser.add_argument("--stream-tokens", type=int, default=200)
    parser.add_argument("--stream-prompt", type=int, default=32, help="tokens")
    parser.add_argument(
        "--restores", type=int, default=3, help="histories resent (streams; 0: a control run)"
    )
    parser.add_argument("--json", type=Path, help="write the streams mode's figures here")
    args = parser.parse_args()
    if args.streams:
        restore_under_load(args)
        return
    for label, cache in (("prefill", 0), ("restored", 1 << 30)):
        runs, cache_stats = asyncio.run(measure(cache, args.history_tokens, args.rounds))
        ttft = statistics.median(s for s, _ in runs)
        restore = cache_stats.restore_seconds / max(1, cache_stats.hits)
        print(
            f"{label:9} TTFT median {ttft * 1000:8.1f} ms, cached tokens {[c for _, c in runs]}, "
            f"restores {cache_stats.hits} of {restore * 1000:.1f} ms on average, "
            f"host memory {cache_stats.bytes / 2**20:.0f} MiB in {cache_stats.entries} entries"
        )


# ---------------------------------------------------------------------- restores under load


@dataclass
class Resend:
    """One history resent while the streams decode."""

    sent_s: float  # since the streams phase began
    ttft_ms: float
    cached_tokens: int
    restore_ms: float | None  # on the scheduler thread (None: nothing restored)


@dataclass
class Run:
    label: str
    cache_bytes: int
    resends: list[Resend] = field(default_factory=list)
    # Per stream, after the first resend: largest gap / median gap, and both in ms.
    ratios: list[float] = field(default_factory=list)
    max_gap_ms: list[float] = field(default_factory=list)
    median_gap_ms: list[float] = field(default_factory=list)
    ratios_before: list[float] = field(default_factory=list)  # the same before it (noise)
    # The median gap before the first resend, and the largest after it over that: a read that
    # slows every step raises the median after, which hides it from the ratio above.
    median_before_ms: list[float] = field(default_factory=list)
    ratios_to_before: list[float] = field(default_factory=list)
    resends_during_streams: int = 0
    host_mib: float = 0.0
    first_resend_s: float = 0.0
    # Every stream's token arrival times (seconds since the streams phase began): the raw data.
    times: list[list[float]] = field(default_factory=list)


def stream_params(i: int, tokens: int) -> SamplingParams:
    """The harness's `completions` request (top_k 40, top_p 0.95, temperature 0.8, the API's
    min_p 0.05), with the end of text ignored so that every stream decodes `tokens`."""
    return SamplingParams(
        max_tokens=tokens,
        temperature=0.8,
        top_k=40,
        top_p=0.95,
        min_p=0.05,
        seed=i,
        ignore_eos=True,
    )


async def follow(
    engine: LlamaEngine, tokens: list[int], params: SamplingParams, times: list[float]
) -> None:
    """Records the arrival time (perf_counter) of every token of one generation in `times`."""
    async for event in engine.start(tokens, params, f"stream-{params.seed}").events():
        if isinstance(event, TokenOut):
            times.append(time.perf_counter())
        else:
            assert event.reason == "length", event


def gaps(times: list[float]) -> list[tuple[float, float]]:
    """(end, length) of each gap between deliveries."""
    deliveries = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > SAME_DELIVERY_S]
    return [(b, b - a) for a, b in itertools.pairwise(deliveries)]


def stall(times: list[float], since: float, before: bool = False) -> tuple[float, float, float]:
    """Largest gap / median gap over the gaps ending after `since` (before it: `before`), and
    both gaps in ms; NaN with fewer than 2 gaps."""
    chosen = [g for end, g in gaps(times) if (end <= since) == before]
    if len(chosen) < 2:
        return float("nan"), float("nan"), float("nan")
    largest, median = max(chosen), statistics.median(chosen)
    return largest / max(1e-9, median), largest * 1000, median * 1000


def texts(history: int, restores: int, streams: int) -> tuple[list[str], list[str], list[str]]:
    """Conversation histories, other users' long prompts, short stream prompts (untokenized)."""

    def conversation(j: int) -> str:
        turns = (
            f"turn {i}: the user asks about item {(i * 7 + j * 13) % 101}." for i in range(history)
        )
        return f"Conversation {j}: " + " ".join(turns)

    histories = [conversation(j) for j in range(restores)]
    backwards = conversation(restores)[::-1]
    others = [f"Other user {i}: {backwards}" for i in range(16)]
    stories = [
        f"Story {i}: once upon a time, in a village by the sea, there lived " * 8
        for i in range(streams)
    ]
    return histories, others, stories


async def restore_run(label: str, cache_bytes: int, args: argparse.Namespace) -> Run:
    """Histories read and evicted; then streams decode while the histories are resent."""
    per_stream = args.stream_prompt + args.stream_tokens + 8
    n_ctx = args.streams * per_stream + 2 * args.history_tokens + 512
    engine = LlamaEngine(
        Settings(
            app_env="test",
            n_ctx=n_ctx,
            context_length=args.history_tokens + 512,
            max_running=args.streams + 1,
            prefix_cache_bytes=cache_bytes,
        )
    )
    await asyncio.to_thread(engine.load)
    run = Run(label, cache_bytes)
    try:
        histories, others, stories = texts(args.history_tokens, args.restores, args.streams)
        cut = args.history_tokens
        bases = [engine.tokenize(h)[:cut] for h in histories]
        for tokens in bases:
            await first_token_s(engine, tokens)
        # Enough other long prompts that every history leaves the context (LRU).
        for other in others[: n_ctx // cut + 1]:
            await first_token_s(engine, engine.tokenize(other)[:cut])
        prompts = [engine.tokenize(s)[: args.stream_prompt] for s in stories]
        await under_load(engine, run, bases, prompts, args.stream_tokens)
        run.host_mib = engine.load_stats().prefix_cache.bytes / 2**20
    finally:
        await engine.close()
    return run


async def under_load(
    engine: LlamaEngine, run: Run, bases: list[list[int]], prompts: list[list[int]], tokens: int
) -> None:
    """The streams decode; once each has 8 tokens, every history is resent in turn."""
    started = time.perf_counter()
    times: list[list[float]] = [[] for _ in prompts]
    streams = [
        asyncio.create_task(follow(engine, p, stream_params(i, tokens), times[i]))
        for i, p in enumerate(prompts)
    ]
    while any(len(t) < 8 for t in times):  # as the harness: 8 tokens each
        await asyncio.sleep(0.01)
    first = time.perf_counter()
    for round_, base in enumerate(bases):
        question = engine.tokenize(f" Round {round_}: and what next?", add_special=False)
        before = engine.load_stats().prefix_cache
        sent = time.perf_counter()
        ttft, cached = await first_token_s(engine, base + question)
        after = engine.load_stats().prefix_cache
        restored = after.hits > before.hits
        seconds = after.restore_seconds - before.restore_seconds
        run.resends.append(
            Resend(sent - started, ttft * 1000, cached, seconds * 1000 if restored else None)
        )
        run.resends_during_streams += not any(s.done() for s in streams)
    await asyncio.gather(*streams)
    run.first_resend_s = first - started
    run.times = [[round(t - started, 5) for t in stream] for stream in times]
    for stream in times:
        ratio, largest, median = stall(stream, first)
        run.ratios.append(ratio)
        run.max_gap_ms.append(largest)
        run.median_gap_ms.append(median)
        ratio_before, _, median_before = stall(stream, first, before=True)
        run.ratios_before.append(ratio_before)
        run.median_before_ms.append(median_before)
        run.ratios_to_before.append(largest / median_before)


def restore_under_load(args: argparse.Namespace) -> None:
    """Both runs (cache off, then on), printed and optionally written as JSON."""
    runs = [
        asyncio.run(restore_run(label, cache, args))
        for label, cache in (("read again", 0), ("restored", 1 << 30))
    ]
    load = os.getloadavg()
    print(
        f"{args.streams} streams x {args.stream_tokens} tokens, {args.restores} histories of "
        f"{args.history_tokens} tokens resent; load average " + " ".join(f"{x:.2f}" for x in load)
    )
    for run in runs:
        print_run(run, args.restores)
    if args.json:
        figures = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "loadavg": load,
            "runs": [no_nan(asdict(run)) for run in runs],
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


def no_nan(value: Any) -> Any:
    """`value` with NaN (a stream with too few gaps) as None: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def finite(values: list[float]) -> list[float]:
    """The values but NaN (a stream with too few gaps); [nan] if none is left."""
    kept = [v for v in values if not math.isnan(v)]
    return kept or [float("nan")]


def print_run(run: Run, restores: int) -> None:
    """One run's figures: the worst and median stream, then each resend."""
    ratios = finite(run.ratios)
    medians = finite(run.median_gap_ms)
    print(
        f"{run.label:10} worst stream max gap / median gap {max(ratios):5.1f}, median over "
        f"streams {statistics.median(ratios):4.1f} (before the first resend: worst "
        f"{max(finite(run.ratios_before)):.1f}); largest gap {max(finite(run.max_gap_ms)):.0f} ms, "
        f"median gaps {min(medians):.0f}-{max(medians):.0f} ms (before the first resend "
        f"{statistics.median(finite(run.median_before_ms)):.0f} ms; worst max gap over it "
        f"{max(finite(run.ratios_to_before)):.1f}); host memory {run.host_mib:.0f} MiB"
    )
    for r in run.resends:
        restore = f"restore {r.restore_ms:.1f} ms" if r.restore_ms is not None else "read again"
        print(
            f"{'':10}   resent at {r.sent_s:5.2f} s: TTFT {r.ttft_ms:7.1f} ms, "
            f"{r.cached_tokens} tokens cached, {restore}"
        )
    if run.resends_during_streams < restores:
        print(f"{'':10}   only {run.resends_during_streams} resends ended before a stream did")


if __name__ == "__main__":
    main()

"""Time to first token of a conversation history evicted from llm-server's KV context by other
traffic and resent: restored from the host-memory prefix cache vs read again (prefill).

In-process, on llm-server's engine (no HTTP): run with llm-server's venv from the repository
root, `llm-server/.venv/bin/python bench/prefix_restore.py [--history-tokens 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from llm_server.config import Settings
from llm_server.engine import PrefixCacheStats
from llm_server.engine.llama import LlamaEngine
from llm_server.engine.types import SamplingParams, TokenOut

ONE = SamplingParams(max_tokens=1, temperature=0)


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
    args = parser.parse_args()
    for label, cache in (("prefill", 0), ("restored", 1 << 30)):
        runs, cache_stats = asyncio.run(measure(cache, args.history_tokens, args.rounds))
        ttft = statistics.median(s for s, _ in runs)
        restore = cache_stats.restore_seconds / max(1, cache_stats.hits)
        print(
            f"{label:9} TTFT median {ttft * 1000:8.1f} ms, cached tokens {[c for _, c in runs]}, "
            f"restores {cache_stats.hits} of {restore * 1000:.1f} ms on average, "
            f"host memory {cache_stats.bytes / 2**20:.0f} MiB in {cache_stats.entries} entries"
        )


if __name__ == "__main__":
    main()

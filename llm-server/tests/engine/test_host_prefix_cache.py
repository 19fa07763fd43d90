"""The host-memory prefix cache on the real model: a history evicted from the context by other
traffic is restored from RAM and answers exactly as a fresh prefill does (flash attention off,
the README's conditions for bit-for-bit prefix reuse); the byte bound holds; a state llama.cpp
refuses is dropped and the prompt read fresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from llm_server.config import Settings
from llm_server.engine.llama import LlamaEngine
from llm_server.engine.prefix_cache import PrefixCache
from llm_server.engine.slots import common_prefix
from llm_server.engine.types import Finished, SamplingParams, TokenOut

pytestmark = pytest.mark.model
PARAMS = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
HISTORY = (
    "User: Tell me about the history of the bicycle, from the draisine to the safety bicycle, "
    "and why pneumatic tyres mattered so much for ordinary riders in towns and villages.\n"
    "Assistant: The first two-wheeled machine was the draisine of 1817, pushed along by the "
    "feet. Pedals on the front wheel came in the 1860s, then the tall penny-farthing, fast but "
    "dangerous. The safety bicycle of the 1880s had two equal wheels and a chain drive.\n"
)
OTHERS = [f"Document {i}: a long note about topic number {i}. " * 12 for i in range(4)]


async def engine_with(cache_bytes: int, n_ctx: int = 256) -> LlamaEngine:
    # Room for the history or one other prompt at a time, so each evicts the one before.
    engine = LlamaEngine(
        Settings(
            app_env="test",
            n_threads=2,
            max_running=1,
            n_ctx=n_ctx,
            context_length=n_ctx,
            flash_attention=False,
            prefix_cache_bytes=cache_bytes,
        )
    )
    await asyncio.to_thread(engine.load)
    return engine


@pytest.fixture
async def engine() -> AsyncIterator[LlamaEngine]:
    engine = await engine_with(64 << 20)
    yield engine
    await engine.close()


async def run(engine: LlamaEngine, prompt: str) -> tuple[list[int], Finished]:
    tokens: list[int] = []
    async for event in engine.start(engine.tokenize(prompt), PARAMS, "c").events():
        if isinstance(event, TokenOut):
            tokens.append(event.token_id)
        else:
            assert isinstance(event, Finished)
            assert event.reason != "error", event.error
            return tokens, event
    raise AssertionError("no Finished event")


async def fresh(prompt: str, n_ctx: int) -> list[int]:
    engine = await engine_with(0, n_ctx)
    try:
        tokens, finish = await run(engine, prompt)
        assert finish.cached_prompt_tokens == 0
        return tokens
    finally:
        await engine.close()


def host_of(engine: LlamaEngine) -> PrefixCache:
    scheduler = engine._scheduler
    assert scheduler is not None
    host = scheduler._host
    assert host is not None
    return host


async def evict(engine: LlamaEngine, prompts: list[str]) -> None:
    for prompt in prompts:
        await run(engine, prompt)


async def test_an_evicted_history_is_restored_and_answers_as_a_fresh_prefill(
    engine: LlamaEngine,
) -> None:
    await run(engine, HISTORY)
    await evict(engine, OTHERS[:2])
    stats = engine.load_stats().prefix_cache
    assert stats.entries >= 1
    assert stats.bytes > 0
    # The next turn: the history, its answer, and a new question.
    next_turn = NEXT_TURN
    cached, finish = await run(engine, next_turn)
    after = engine.load_stats().prefix_cache
    assert after.hits == stats.hits + 1
    shared = common_prefix(engine.tokenize(HISTORY), engine.tokenize(next_turn))
    # The entry holds the history and the answer, cut where the next turn parts from it.
    assert finish.cached_prompt_tokens >= shared
    assert after.restored_tokens - stats.restored_tokens == finish.cached_prompt_tokens
    assert cached == await fresh_answer(next_turn)


NEXT_TURN = HISTORY + "User: And the chain?\nAssistant:"
FRESH: dict[str, list[int]] = {}


async def fresh_answer(prompt: str, n_ctx: int = 256) -> list[int]:
    """A prompt's greedy answer read with no cache at all (once per prompt and test run)."""
    if prompt not in FRESH:
        FRESH[prompt] = await fresh(prompt, n_ctx)
    return FRESH[prompt]


def corrupt_magic(blob: bytearray) -> bytearray:
    return bytearray([blob[0] ^ 0xFF]) + blob[1:]


def corrupt_layers(blob: bytearray) -> bytearray:
    # The second half holds later layers' type and row-size headers: they no longer match.
    half = len(blob) // 2
    return blob[:half] + bytearray(len(blob) - half)


def longer(blob: bytearray) -> bytearray:
    return blob + bytearray(16)  # llama.cpp reads fewer bytes than it was given


@pytest.mark.parametrize("damage", [corrupt_magic, corrupt_layers, longer])
async def test_a_state_llama_cpp_refuses_is_dropped_and_the_prompt_read_fresh(
    engine: LlamaEngine, damage: Callable[[bytearray], bytearray]
) -> None:
    await run(engine, NEXT_TURN)
    await evict(engine, OTHERS[:2])
    host = host_of(engine)
    prompt = engine.tokenize(NEXT_TURN)
    match = host.lookup(prompt, len(prompt))
    assert match is not None
    assert match.length == len(prompt)
    host.discard(match.entry)
    assert host.add(list(match.entry.tokens), damage(match.entry.blob)) is not None
    before = engine.load_stats().prefix_cache
    tokens, finish = await run(engine, NEXT_TURN)
    after = engine.load_stats().prefix_cache
    assert after.restore_failures == before.restore_failures + 1
    assert after.hits == before.hits
    assert finish.cached_prompt_tokens == 0
    assert tokens == await fresh_answer(NEXT_TURN)
    # The engine goes on: the damaged entry is gone, the answer's own state replaces it.
    await evict(engine, OTHERS[2:])
    restored, finish = await run(engine, NEXT_TURN)
    assert finish.cached_prompt_tokens == len(prompt) - 1
    assert restored == tokens


async def test_host_memory_stays_under_its_byte_bound_least_recently_used_first() -> None:
    probe = await engine_with(64 << 20)
    try:
        await run(probe, OTHERS[0])
        await evict(probe, OTHERS[1:2])
        one_entry = probe.load_stats().prefix_cache.bytes
    finally:
        await probe.close()
    engine = await engine_with(one_entry * 3 // 2)  # room for one entry, not two
    try:
        await run(engine, HISTORY)
        for other in OTHERS:
            await run(engine, other)
            stats = engine.load_stats().prefix_cache
            assert stats.bytes <= stats.capacity_bytes
            assert stats.entries <= 1
        assert stats.saved >= len(OTHERS)  # the history and the documents but the last
        # The history went first: resent, it is read again, not restored.
        tokens, finish = await run(engine, NEXT_TURN)
        assert finish.cached_prompt_tokens <= 1  # the BOS token, from the last document
        assert engine.load_stats().prefix_cache.hits == 0
        assert tokens == await fresh_answer(NEXT_TURN)
    finally:
        await engine.close()


async def test_past_the_sliding_window_only_a_whole_entry_is_restored() -> None:
    # Gemma 3's sliding-window layers attend to the last 512 positions, and llama.cpp saves a
    # sequence's state of those layers for its last 512 positions only: a state longer than
    # that cannot be cut deeper than its last token, or the next token would miss cells.
    long_history = HISTORY * 6  # about 660 tokens
    engine = await engine_with(64 << 20, n_ctx=1600)
    try:
        answer, _ = await run(engine, long_history)
        others = [other * 4 for other in OTHERS[:2]]
        await evict(engine, others)
        stats = engine.load_stats().prefix_cache
        cut = long_history[: len(long_history) // 2] + "User: something else entirely?"
        tokens, finish = await run(engine, cut)
        assert engine.load_stats().prefix_cache.hits == stats.hits  # too deep a cut
        assert finish.cached_prompt_tokens <= 1
        assert tokens == await fresh_answer(cut, n_ctx=1600)
        await evict(engine, others)
        # The next turn holds the answer as it was generated: the saved state is its prefix.
        said = "".join(engine.token_text(t) for t in answer)
        next_turn = long_history + said + "\nUser: And the chain?\nAssistant:"
        tokens, finish = await run(engine, next_turn)
        assert engine.load_stats().prefix_cache.hits == stats.hits + 1
        assert finish.cached_prompt_tokens >= len(engine.tokenize(long_history)) - 1
        assert tokens == await fresh_answer(next_turn, n_ctx=1600)
    finally:
        await engine.close()

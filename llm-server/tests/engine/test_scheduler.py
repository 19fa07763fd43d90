"""The continuous-batching scheduler on the real model (llama.cpp, embedded Gemma 3 270M)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from llm_server.config import Settings
from llm_server.engine.errors import EngineBusyError
from llm_server.engine.llama import LlamaEngine
from llm_server.engine.types import Finished, SamplingParams, TokenOut
from llm_server.errors import http_error

pytestmark = pytest.mark.model
PROMPTS = [f"Story number {i}: once upon a time there was a" for i in range(16)]


@pytest.fixture
async def engine() -> AsyncIterator[LlamaEngine]:
    engine = LlamaEngine(
        Settings(
            app_env="test", n_threads=2, max_running=16, max_queue=2, n_ctx=4096, context_length=512
        )
    )
    await asyncio.to_thread(engine.load)
    yield engine
    await engine.close()


async def run(
    engine: LlamaEngine, prompt: str, params: SamplingParams, client: str = "c"
) -> tuple[list[TokenOut], Finished]:
    tokens: list[TokenOut] = []
    generation = engine.start(engine.tokenize(prompt), params, client)
    async for event in generation.events():
        if isinstance(event, TokenOut):
            tokens.append(event)
        else:
            return tokens, event
    raise AssertionError("no Finished event")


TOPICS = [
    "The recipe for bread needs flour, water and",
    "In 1969 the first men walked on the",
    "The stock market fell sharply because",
    "def fibonacci(n):\n    if n <",
    "Dear Sir, I am writing to",
    "The mitochondria is the powerhouse of the",
    "Roses are red, violets are",
    "SELECT name FROM users WHERE",
    "The capital of Japan is",
    "To be or not to be, that is the",
    "My favourite football team is",
    "Photosynthesis converts sunlight into",
    "The quick brown fox jumps over the",
    "Once upon a time, a dragon",
    "The train to Paris leaves at",
    "E = mc^2 means that energy",
]
FIRST = SamplingParams(max_tokens=1, temperature=0, logprobs=5)
# Measured on this machine: batching 16 prompts into one llama.cpp step moves the top token's
# log-probability by up to ~0.3 (different CPU kernel paths for different batch shapes); a
# sequence reading another's cells would move it by far more and change its top tokens.
NUMERIC_DRIFT = 0.35


async def test_batched_sequences_see_only_their_own_cells(engine: LlamaEngine) -> None:
    solo = [(await run(engine, t, FIRST, "solo"))[0][0] for t in TOPICS]
    together = await asyncio.gather(
        *(run(engine, t, FIRST, f"client{i}") for i, t in enumerate(TOPICS))
    )
    exact = 0
    for alone, (tokens, finish) in zip(solo, together, strict=True):
        assert finish.completion_tokens == 1
        batched = tokens[0]
        mine = {t.token_id: t.logprob for t in alone.top_logprobs}
        theirs = {t.token_id: t.logprob for t in batched.top_logprobs}
        assert len(mine.keys() & theirs.keys()) >= 3  # the same short list of candidates
        if alone.token_id in theirs:
            assert abs(mine[alone.token_id] - theirs[alone.token_id]) < NUMERIC_DRIFT
        exact += alone.token_id == batched.token_id
    assert exact >= 12  # greedy picks differ only where the top two were nearly tied


async def test_a_cancelled_sequence_frees_its_cells_for_the_next_request(
    engine: LlamaEngine,
) -> None:
    params = SamplingParams(max_tokens=400, temperature=0, ignore_eos=True)
    generation = engine.start(engine.tokenize(PROMPTS[0]), params, "c")
    async with aclosing(generation.events()) as events:
        for _ in range(3):
            await anext(events)
    # A deadline, not a speed bound: a busy machine may take a while to reach the next step.
    for _ in range(6000):
        if engine.load_stats().running == 0:
            break
        await asyncio.sleep(0.01)
    assert engine.load_stats().running == 0
    # Freed by the cancel, not by running to its length.
    assert generation._sequence.generated < params.max_tokens
    # The next request starting with the same text takes over the cancelled cells.
    _, finish = await run(engine, PROMPTS[0], SamplingParams(max_tokens=4, temperature=0))
    assert finish.cached_prompt_tokens == len(engine.tokenize(PROMPTS[0])) - 1


async def test_a_conversation_next_turn_reuses_the_cache_and_answers_the_same() -> None:
    # Without flash attention llama.cpp's results do not depend on how batches are cut, so
    # reuse must give bit-for-bit the tokens of a fresh computation.
    engine = LlamaEngine(
        Settings(app_env="test", n_threads=2, max_running=4, n_ctx=2048, flash_attention=False)
    )
    await asyncio.to_thread(engine.load)
    try:
        await _next_turn_matches_a_fresh_engine(engine)
    finally:
        await engine.close()


async def _next_turn_matches_a_fresh_engine(engine: LlamaEngine) -> None:
    params = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    first, finish = await run(engine, PROMPTS[1], params)
    assert finish.cached_prompt_tokens == 0
    next_turn = PROMPTS[1] + "".join(t.text for t in first) + " And then"
    before = engine.load_stats().prefix_tokens_reused
    cached, finish = await run(engine, next_turn, params)
    assert finish.cached_prompt_tokens >= len(engine.tokenize(PROMPTS[1]))
    assert engine.load_stats().prefix_tokens_reused - before == finish.cached_prompt_tokens
    # The same answer as with no cache at all: run it where nothing matches.
    fresh = LlamaEngine(
        Settings(app_env="test", n_threads=2, max_running=2, n_ctx=1024, flash_attention=False)
    )
    await asyncio.to_thread(fresh.load)
    try:
        uncached, finish = await run(fresh, next_turn, params)
        assert finish.cached_prompt_tokens == 0
    finally:
        await fresh.close()
    assert [t.token_id for t in cached] == [t.token_id for t in uncached]


async def test_the_queue_bound_refuses_with_retry_after(engine: LlamaEngine) -> None:
    params = SamplingParams(max_tokens=200, temperature=0, ignore_eos=True)
    generations = [engine.start(engine.tokenize(p), params, "c") for p in PROMPTS]
    waiting = [engine.start(engine.tokenize("x"), params, "c") for _ in range(2)]
    with pytest.raises(EngineBusyError) as refused:
        engine.start(engine.tokenize("y"), params, "c")
    error = http_error(refused.value)
    assert error.retry_after == 1
    assert error.status_code == 429
    for generation in [*generations, *waiting]:
        generation.cancel()


async def test_a_sequence_stays_within_its_context(engine: LlamaEngine) -> None:
    # max_tokens is enforced even with end-of-sequence ignored: the cells reserved suffice.
    tokens, finish = await run(
        engine, PROMPTS[2], SamplingParams(max_tokens=40, temperature=0.9, seed=3, ignore_eos=True)
    )
    assert finish.reason == "length"
    assert len(tokens) == 40


async def _tokens_streamed_while_reading(
    engine: LlamaEngine, prompt: list[int], streams: int = 2
) -> int:
    """Tokens `streams` decoding streams produce between `prompt`'s arrival and its first
    token."""
    streamed = 0
    started = asyncio.Event()

    async def stream(client: str) -> None:
        nonlocal streamed
        params = SamplingParams(max_tokens=300, temperature=0, ignore_eos=True)
        generation = engine.start(engine.tokenize(PROMPTS[5]), params, client)
        async with aclosing(generation.events()) as events:
            async for event in events:
                streamed += isinstance(event, TokenOut)
                if streamed >= 4 * streams:
                    started.set()

    tasks = [asyncio.create_task(stream(f"s{i}")) for i in range(streams)]
    try:
        await started.wait()
        before = streamed
        generation = engine.start(prompt, SamplingParams(max_tokens=1, temperature=0), "new")
        async for event in generation.events():
            if isinstance(event, TokenOut):
                return streamed - before
        raise AssertionError("the new prompt produced no token")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _long_prompt(engine: LlamaEngine) -> list[int]:
    prompt = engine.tokenize(" ".join(f"item {i}," for i in range(150)))[:400]
    assert len(prompt) == 400  # 13 chunks of 32 tokens; the step budget would take it whole
    return prompt


async def test_a_long_prompt_is_read_in_chunks_while_streams_decode(engine: LlamaEngine) -> None:
    # One long prompt, three streams: the streams keep decoding, a token per step each, while
    # the prompt is read a chunk a step.
    assert await _tokens_streamed_while_reading(engine, _long_prompt(engine), streams=3) >= 3 * 10


async def test_long_prompts_at_least_half_as_many_as_streams_are_read_whole(
    engine: LlamaEngine,
) -> None:
    # One long prompt, two streams: the prompt is read in one step.
    assert await _tokens_streamed_while_reading(engine, _long_prompt(engine), streams=2) <= 2 * 3


async def test_a_short_prompt_is_read_whole_while_streams_decode(engine: LlamaEngine) -> None:
    short_prompt = engine.tokenize(TOPICS[0])
    assert await _tokens_streamed_while_reading(engine, short_prompt, streams=3) <= 3 * 3


REPEATING = [
    "1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1,",
    "The cat sat on the mat. The cat sat on the mat. The cat",
    "red, green, blue, red, green, blue, red,",
    "Monday, Tuesday, Monday, Tuesday, Monday,",
    "abc abc abc abc abc",
]


async def _answers(
    engine: LlamaEngine, prompts: list[str], params: SamplingParams
) -> list[tuple[list[int], Finished]]:
    results = await asyncio.gather(
        *(run(engine, p, params, f"client{i}") for i, p in enumerate(prompts))
    )
    return [([t.token_id for t in tokens], finish) for tokens, finish in results]


async def _without_guesses(prompts: list[str], params: SamplingParams) -> list[list[int]]:
    engine = LlamaEngine(
        Settings(app_env="test", n_threads=2, max_running=16, n_ctx=4096, batch_multiple=1)
    )
    await asyncio.to_thread(engine.load)
    try:
        answers = await _answers(engine, prompts, params)
        assert engine.load_stats().draft_tokens == 0
        return [tokens for tokens, _ in answers]
    finally:
        await engine.close()


async def test_guesses_fill_ragged_steps_and_the_sampler_confirms_them(
    engine: LlamaEngine,
) -> None:
    # Five streams make 5-token steps, padded to 8 with guessed next tokens; on repetitive
    # text the model confirms most guesses, so streams move more than a token per step.
    params = SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    before = engine.load_stats()
    guessed = await _answers(engine, REPEATING, params)
    after = engine.load_stats()
    drafted = after.draft_tokens - before.draft_tokens
    accepted = after.draft_tokens_accepted - before.draft_tokens_accepted
    assert 40 <= accepted <= drafted
    assert all(f.reason == "length" and len(tokens) == 40 for tokens, f in guessed)
    # The same answers as without guesses, but for near-ties moved by batch-shape drift.
    plain = await _without_guesses(REPEATING, params)
    assert sum(tokens == p for (tokens, _), p in zip(guessed, plain, strict=True)) >= 4


async def test_more_running_sequences_than_output_rows_reserved_still_load() -> None:
    # llama.cpp refuses a context whose output rows are fewer than its sequence ids (two per
    # running sequence here): 40 running sequences need more than 40 + 32 + 4 rows.
    engine = LlamaEngine(Settings(app_env="test", n_threads=2, max_running=40, n_ctx=2048))
    await asyncio.to_thread(engine.load)
    try:
        _, finish = await run(engine, TOPICS[0], SamplingParams(max_tokens=2, temperature=0))
        assert finish.completion_tokens == 2
    finally:
        await engine.close()


async def test_no_guesses_when_sliding_window_layers_keep_only_their_window() -> None:
    # Such a cache may give a guess's cell the place of one the next token still needs.
    engine = LlamaEngine(
        Settings(app_env="test", n_threads=2, max_running=8, n_ctx=2048, swa_full=False)
    )
    await asyncio.to_thread(engine.load)
    try:
        params = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
        answers = await _answers(engine, REPEATING, params)
        assert all(len(tokens) == 8 for tokens, _ in answers)
        assert engine.load_stats().draft_tokens == 0
    finally:
        await engine.close()


async def test_rejected_guesses_leave_no_cells_behind(engine: LlamaEngine) -> None:
    # Three streams of ordinary text: a guess per step, most of them wrong. A wrong guess's
    # cell left in the cache would collide with the next token's position and fail the step.
    params = SamplingParams(max_tokens=30, temperature=0, ignore_eos=True)
    before = engine.load_stats()
    answers = await _answers(engine, TOPICS[:3], params)
    after = engine.load_stats()
    rejected = (after.draft_tokens - before.draft_tokens) - (
        after.draft_tokens_accepted - before.draft_tokens_accepted
    )
    assert rejected >= 3
    assert all(f.reason == "length" and len(tokens) == 30 for tokens, f in answers)


async def test_a_stop_or_max_tokens_inside_confirmed_guesses_ends_the_answer_there(
    engine: LlamaEngine,
) -> None:
    prompts = REPEATING[:3]
    stopped = SamplingParams(max_tokens=40, temperature=0, stop=("4, 1",))
    short = SamplingParams(max_tokens=3, temperature=0, ignore_eos=True)
    for params in (stopped, short):
        answers = await _answers(engine, prompts, params)
        plain = await _without_guesses(prompts, params)
        assert [tokens for tokens, _ in answers] == plain
    answers = await _answers(engine, prompts, stopped)
    assert answers[0][1].reason == "stop"
    assert all(len(tokens) == 3 for tokens, _ in await _answers(engine, prompts, short))

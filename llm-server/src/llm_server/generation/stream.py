"""The events of a job's choices as they are produced, measured on the way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from llm_server.engine import Generation
from llm_server.engine.errors import (
    EngineError,
    EngineUnavailableError,
    GenerationTimeoutError,
    GrammarError,
)
from llm_server.engine.types import Finished, GenerationEvent, TokenOut
from llm_server.generation.jobs import RequestUsage
from llm_server.observability.metrics import Metrics
from llm_server.observability.tracing import record_generation


class ChoiceStream:
    """The events of every choice, interleaved as produced and tagged with the choice index.

    A failed or cancelled choice raises an `EngineError` after the tokens before it;
    leaving the iteration early cancels every choice.
    """

    def __init__(self, generations: list[Generation], usage: RequestUsage, metrics: Metrics):
        self._generations = generations
        self._usage = usage
        self._metrics = metrics
        self._started = 0.0
        self._last_token_at: dict[int, float] = {}

    async def __aiter__(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        self._started = time.perf_counter()
        # One choice (the common case) needs no task and no second queue per token.
        events = self._single() if len(self._generations) == 1 else self._interleaved()
        try:
            async for index, event in events:
                if isinstance(event, Finished):
                    self._account(index, event)
                yield index, event
        finally:
            await events.aclose()
            for generation in self._generations:
                generation.cancel()

    def _observe(self, index: int, now: float) -> None:
        last = self._last_token_at.get(index)
        if last is None and self._usage.ttft_s is None:
            self._usage.ttft_s = now - self._started
            self._metrics.time_to_first_token.observe(self._usage.ttft_s)
        elif last is not None:
            self._metrics.inter_token.observe(now - last)
        self._last_token_at[index] = now

    def _account(self, index: int, event: Finished) -> None:
        self._usage.completion_tokens += event.completion_tokens
        if index == 0:
            self._usage.cached_prompt_tokens = event.cached_prompt_tokens
            record_generation(self._started, time.perf_counter(), self._usage.ttft_s, event)
        self._metrics.completion_tokens.inc(event.completion_tokens)
        if event.reason not in ("stop", "length"):
            raise engine_failure(event)

    async def _single(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        async for event in self._generations[0].events():
            if isinstance(event, TokenOut):
                self._observe(0, time.perf_counter())
            yield 0, event

    async def _interleaved(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        queue: asyncio.Queue[tuple[int, GenerationEvent]] = asyncio.Queue()
        prompt_tokens = self._usage.prompt_tokens

        async def pump(index: int, generation: Generation) -> None:
            try:
                async for event in generation.events():
                    if isinstance(event, TokenOut):
                        self._observe(index, time.perf_counter())
                    await queue.put((index, event))
            except Exception as exc:  # a broken engine must end the stream, not hang it
                await queue.put((index, Finished("error", prompt_tokens, 0, error=str(exc))))

        tasks = [asyncio.create_task(pump(i, g)) for i, g in enumerate(self._generations)]
        remaining = len(tasks)
        try:
            while remaining:
                index, event = await queue.get()
                remaining -= isinstance(event, Finished)
                yield index, event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def engine_failure(event: Finished) -> EngineError:
    """The error a generation that ended other than by stop or length is reported as."""
    message = event.error or "generation was interrupted"
    if event.reason == "timeout":
        return GenerationTimeoutError(message)
    if event.reason == "unsatisfiable":
        return GrammarError(
            "the response_format schema allows nothing the model can write next (an empty "
            "character class, a NUL character, ...): fix the schema"
        )
    return EngineUnavailableError(message)

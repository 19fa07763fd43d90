"""A scripted engine for HTTP- and service-layer tests (the real one is tested separately)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from llm_server.config import Settings
from llm_server.engine import Engine, EngineLoad, PrefixCacheStats
from llm_server.engine.chat import Message, Segment, transcript_segments
from llm_server.engine.errors import EngineBusyError
from llm_server.engine.grammar import JsonGrammars
from llm_server.engine.prefix_cache import PrefixCache
from llm_server.engine.types import (
    Finished,
    FinishReason,
    GenerationEvent,
    SamplingParams,
    ScoredToken,
    TokenOut,
    TopLogprob,
)
from llm_server.generation.service import GenerationService
from llm_server.lifecycle import Lifecycle
from llm_server.models import Catalog, ModelRegistry, ModelSpec
from llm_server.observability.metrics import Metrics
from llm_server.openai.serving import OpenAIServing


@dataclass
class FakeGeneration:
    """Yields the engine's script, one word per token, honouring max_tokens and stops."""

    engine: FakeEngine
    prompt: list[int]
    params: SamplingParams
    cancelled: bool = False
    produced: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def events(self) -> AsyncGenerator[GenerationEvent, None]:
        self.engine.running += 1
        try:
            text = ""
            for word in self.engine.script:
                if self.cancelled:
                    return
                if self.engine.token_delay:
                    await asyncio.sleep(self.engine.token_delay)
                if self.engine.fail_after is not None and self.produced >= self.engine.fail_after:
                    yield Finished(
                        self.engine.finish_reason_on_fail,
                        len(self.prompt),
                        self.produced,
                        error="engine broke",
                    )
                    return
                self.produced += 1
                text += word
                hit = next((s for s in self.params.stop if s in text), None)
                if hit is not None:
                    keep = word[: len(word) - (len(text) - text.index(hit))]
                    # As the real engine: the token completing a stop is sent, even empty.
                    yield TokenOut(keep, self.produced)
                    yield Finished("stop", len(self.prompt), self.produced)
                    return
                tops = (TopLogprob(word, 1, -0.5),) if self.params.logprobs else ()
                yield TokenOut(
                    word, self.produced, -0.5 if self.params.logprobs is not None else None, tops
                )
                if self.produced >= self.params.max_tokens:
                    yield Finished("length", len(self.prompt), self.produced)
                    return
            yield Finished("stop", len(self.prompt), self.produced)
        finally:
            self.engine.running -= 1
            self.done.set()

    def cancel(self) -> None:
        self.cancelled = True
        self.engine.cancelled += 1


class FakeEngine:
    """Stands in for llama.cpp; `gate` holds loading until set."""

    def __init__(self, *, fail: bool = False, script: list[str] | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fail = fail
        self.closed = False
        self.script = script or ["Hello", " there", ",", " friend", "."]
        self.token_delay = 0.0
        self.fail_after: int | None = None
        self.finish_reason_on_fail: FinishReason = "error"
        self.queue_full = False
        self.running = 0
        self.drafted = self.accepted = 0
        self.prefix_cache = PrefixCacheStats()
        self.cancelled = 0
        self.started: list[FakeGeneration] = []
        self.grammars: list[str] = []
        self.tokenized = 0
        self.chat_template: bool | None = False  # a base model, as the embedded one
        self.tokenizing_threads: set[int] = set()
        # Real conversion of schemas; the "compiled" grammars are recorded.
        self._grammars = JsonGrammars(self.grammars.append)

    @property
    def model_id(self) -> str:
        return "fake-model"

    @property
    def context_length(self) -> int:
        return 64

    def load(self) -> None:
        self.gate.wait(timeout=10)
        if self.fail:
            raise ValueError("not a GGUF file")

    def load_stats(self) -> EngineLoad:
        return EngineLoad(
            running=self.running,
            queued=0,
            draft_tokens=self.drafted,
            draft_tokens_accepted=self.accepted,
            prefix_cache=self.prefix_cache,
        )

    async def close(self) -> None:
        self.closed = True
        await self._grammars.close()

    @property
    def max_token_bytes(self) -> int:
        return 16

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        self.tokenized += 1
        self.tokenizing_threads.add(threading.get_ident())
        return ([1] if add_special else []) + [len(w) for w in text.split()]

    def token_text(self, token: int) -> str:
        return f"<{token}>"

    def render_chat(self, messages: list[Message]) -> list[Segment]:
        return transcript_segments(messages)

    @property
    def chat_stop_strings(self) -> tuple[str, ...]:
        return ()

    @property
    def has_chat_template(self) -> bool | None:
        return self.chat_template

    async def json_grammar(self, schema: dict[str, Any] | None) -> str:
        return await self._grammars.grammar(schema)

    def start(self, prompt: list[int], params: SamplingParams, client: str) -> FakeGeneration:
        if self.queue_full:
            raise EngineBusyError("the server is busy: too many requests waiting")
        generation = FakeGeneration(self, prompt, params)
        self.started.append(generation)
        return generation

    async def score(
        self, tokens: list[int], score_from: int, top_k: int, client: str
    ) -> list[ScoredToken]:
        # A label is "likely" in proportion to its token lengths: deterministic and checkable.
        return [
            ScoredToken(
                t, f"<{t}>", -float(t), tuple(TopLogprob("x", 9, -0.1) for _ in range(top_k))
            )
            for t in tokens[score_from:]
        ]


def used_prefix_cache() -> PrefixCacheStats:
    """A host-memory cache's figures after some use: one 300-byte state held of 1,000 bytes,
    two restores (3 tokens in 2 ms, 2 tokens in 200 ms), one miss."""
    cache = PrefixCache(1000)
    cache.add([1, 2, 3], bytearray(300))
    cache.record_restore(3, 0.002)
    cache.record_restore(2, 0.2)
    cache.record_miss()
    return cache.stats()


def single_registry(engine: FakeEngine | Engine, max_running: int = 4) -> ModelRegistry:
    """The registry of one model served by `engine`, as `create_app` builds it without a
    models file (not loaded yet)."""
    settings = Settings(app_env="test", max_running=max_running)
    catalog = Catalog((ModelSpec(id="", settings=settings),))
    return ModelRegistry(catalog, lambda _: engine, engine=engine)


def generation_service(engine: FakeEngine | Engine) -> GenerationService:
    """The generation service over `engine`, as `create_app` builds it (the model loaded)."""
    registry = single_registry(engine)
    registry.default.state = "loaded"
    lifecycle = Lifecycle(registry)
    lifecycle.state = "ready"
    return GenerationService(registry, lifecycle, Metrics())


def openai_serving(engine: FakeEngine | Engine, settings: Settings) -> OpenAIServing:
    """The OpenAI serving layer over `engine`."""
    return OpenAIServing(generation_service(engine), settings)

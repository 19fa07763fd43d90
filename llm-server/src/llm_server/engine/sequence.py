"""One request inside the scheduler: its prompt, sampler, place in the KV cache and output."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm_server.engine.drafts import NgramIndex
from llm_server.engine.slots import Slot
from llm_server.engine.stops import StopMatcher
from llm_server.engine.strategy import Strategy
from llm_server.engine.types import GenerationEvent, SamplingParams, ScoredToken

if TYPE_CHECKING:  # the planner works on sequences and must not need llama.cpp
    from llm_server.engine.sampling import Sampler


@dataclass(eq=False)
class Sequence:
    """One request's state inside the scheduler. Only the worker thread mutates it."""

    strategy: Strategy  # generate or score
    prompt: list[int]
    emit: Callable[[GenerationEvent | list[ScoredToken]], None]
    client: str
    params: SamplingParams | None = None
    score_from: int = 1
    score_top_k: int = 0
    deadline: float = 0.0
    submitted_at: float = 0.0
    queued_s: float | None = None  # submitted until admitted (tracing)
    sampler: Sampler | None = None
    slot: Slot | None = None
    n_past: int = 0
    reused: int = 0
    pending_token: int | None = None
    generated: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    stop: StopMatcher | None = None
    drafter: NgramIndex | None = None  # the text so far, for guessing what comes next
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    scored: list[ScoredToken] = field(default_factory=list)

    @property
    def reservation(self) -> int:
        return self.strategy.reservation(self)

    @property
    def reuse_limit(self) -> int:
        """Prompt tokens that may come from a cache."""
        return self.strategy.reuse_limit(self)

    @property
    def prefilling(self) -> bool:
        return self.n_past < len(self.prompt)

"""The engine's vocabulary: what a request asks for and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# "unsatisfiable": the request's grammar allows no further token (the client's schema).
FinishReason = Literal["stop", "length", "cancelled", "timeout", "error", "unsatisfiable"]


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token, and when to stop."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # llama.cpp's repetition penalty (1.0: none): logits of generated tokens divided by it.
    repeat_penalty: float = 1.0
    logprobs: int | None = None
    grammar: str | None = None
    ignore_eos: bool = False


@dataclass(frozen=True)
class TopLogprob:
    token: str
    token_id: int
    logprob: float


@dataclass(frozen=True)
class TokenOut:
    """One generated token: the text it adds (maybe empty while a stop string is pending)."""

    text: str
    token_id: int
    logprob: float | None = None
    top_logprobs: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class Finished:
    """The last event of a generation."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    error: str | None = None
    queued_s: float | None = None  # time waiting for a sequence slot (tracing); None: unknown


GenerationEvent = TokenOut | Finished


@dataclass(frozen=True)
class ScoredToken:
    """A token of a scored text, with its log-probability given everything before it."""

    token_id: int
    text: str
    logprob: float | None
    top_logprobs: tuple[TopLogprob, ...] = field(default=())

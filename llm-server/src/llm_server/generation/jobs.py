"""What a generation request becomes once checked, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_server.engine.types import Finished, SamplingParams, TokenOut
from llm_server.models import ModelLease


@dataclass(frozen=True)
class Job:
    """A validated generation request: its model (held until the job is queued), the
    prompt's tokens and one set of params per choice."""

    model: ModelLease
    prompt: list[int]
    choices: list[SamplingParams]
    client: str
    route: str


@dataclass
class ChoiceResult:
    """One choice run to its end: its text, its tokens and how it finished."""

    text: str = ""
    tokens: list[TokenOut] = field(default_factory=list)
    finish: Finished | None = None


@dataclass
class RequestUsage:
    """What a request consumed; the request log and the metrics read it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    ttft_s: float | None = None

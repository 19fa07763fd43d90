"""What the HTTP layer needs from an inference backend, and nothing more."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from llm_server.engine.chat import Message, Segment
from llm_server.engine.prefix_cache import PrefixCacheStats
from llm_server.engine.types import GenerationEvent, SamplingParams, ScoredToken


@dataclass(frozen=True)
class EngineLoad:
    """How busy the engine is: exported as metrics and read by the gateway's balancer."""

    running: int
    queued: int
    prefix_tokens_reused: int = 0
    prefix_tokens_computed: int = 0  # prompt tokens read afresh (not found cached)
    draft_tokens: int = 0
    draft_tokens_accepted: int = 0
    prefix_cache: PrefixCacheStats = field(default_factory=PrefixCacheStats)


class Generation(Protocol):
    """A submitted generation: its events, and a way to stop it."""

    def events(self) -> AsyncGenerator[GenerationEvent, None]:
        """Tokens as they are produced, ending with `Finished`."""
        ...

    def cancel(self) -> None:
        """Stop generating and free the sequence (idempotent)."""
        ...


class Engine(Protocol):
    """An inference backend. Loading is blocking and runs off the event loop."""

    @property
    def model_id(self) -> str: ...

    @property
    def context_length(self) -> int:
        """The most tokens, prompt and completion together, one sequence may hold."""
        ...

    @property
    def max_token_bytes(self) -> int:
        """The longest token's text in bytes: a text over context x this cannot fit."""
        ...

    def load(self) -> None:
        """Load the model; raises on failure. Called once, in a worker thread."""
        ...

    def load_stats(self) -> EngineLoad: ...

    async def close(self) -> None:
        """Stop accepting work, let running work finish within the drain timeout, free."""
        ...

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of `text`; `InvalidTextError` if it holds a lone surrogate."""
        ...

    def token_text(self, token: int) -> str:
        """The text of one token, control tokens included."""
        ...

    def render_chat(self, messages: list[Message]) -> list[Segment]:
        """The chat prompt: template markup and message text told apart (`tokenize_segments`)."""
        ...

    async def json_grammar(self, schema: dict[str, Any] | None) -> str:
        """A grammar (for `SamplingParams.grammar`) that forces JSON: any object when `schema`
        is None, else one matching `schema`; raises `GrammarError` if it cannot be used."""
        ...

    @property
    def chat_stop_strings(self) -> tuple[str, ...]: ...

    @property
    def has_chat_template(self) -> bool | None:
        """False for a GGUF without a chat template (a base model: chat is a transcript);
        None until the model is loaded."""
        ...

    def start(self, prompt: list[int], params: SamplingParams, client: str) -> Generation:
        """Queue one completion now; raises `EngineBusyError` or `EngineUnavailableError` at
        once. Its events end with `Finished`; reading them raises no engine error."""
        ...

    async def score(
        self, tokens: list[int], score_from: int, top_k: int, client: str
    ) -> list[ScoredToken]:
        """Log-probability of each token from `score_from` on, given the ones before it;
        `EngineUnavailableError` if scoring was interrupted."""
        ...


def combined_load(loads: Iterable[EngineLoad]) -> EngineLoad:
    """The load of several engines (several models) as one: every count summed."""
    total = EngineLoad(running=0, queued=0)
    for load in loads:
        cache, other = total.prefix_cache, load.prefix_cache
        total = EngineLoad(
            running=total.running + load.running,
            queued=total.queued + load.queued,
            prefix_tokens_reused=total.prefix_tokens_reused + load.prefix_tokens_reused,
            prefix_tokens_computed=total.prefix_tokens_computed + load.prefix_tokens_computed,
            draft_tokens=total.draft_tokens + load.draft_tokens,
            draft_tokens_accepted=total.draft_tokens_accepted + load.draft_tokens_accepted,
            prefix_cache=PrefixCacheStats(
                **{
                    f.name: _add(getattr(cache, f.name), getattr(other, f.name))
                    for f in fields(PrefixCacheStats)
                }
            ),
        )
    return total


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b, strict=True))
    return a + b


def counters_only(load: EngineLoad) -> EngineLoad:
    """What of an engine's load outlives it (counts so far), for an engine being unloaded."""
    cache = replace(load.prefix_cache, capacity_bytes=0, bytes=0, entries=0)
    return replace(load, running=0, queued=0, prefix_cache=cache)

"""The generation service every inference route goes through, whatever its protocol: whether
the server takes work, which model it serves, and jobs run on the engine as measured streams."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from llm_server.engine import Engine, Generation
from llm_server.engine.types import TokenOut
from llm_server.errors import ModelNotFoundError, UnavailableError
from llm_server.generation.jobs import ChoiceResult, Job, RequestUsage
from llm_server.generation.stream import ChoiceStream
from llm_server.lifecycle import Lifecycle, State
from llm_server.observability.metrics import Metrics


@dataclass(frozen=True)
class ModelInfo:
    """The served model as `/v1/models` describes it."""

    id: str
    created: int
    context_length: int
    # "base": no chat template (chat is a transcript); "chat": it has one; None while loading.
    kind: Literal["base", "chat"] | None


@dataclass(frozen=True)
class Readiness:
    """What the readiness probe reports; the load only once ready."""

    state: State
    model: str | None
    error: str | None = None
    running: int | None = None
    queued: int | None = None
    max_running: int | None = None


class GenerationService:
    """Readiness, the model, and jobs run on the engine with their metrics."""

    def __init__(
        self, engine: Engine, lifecycle: Lifecycle, metrics: Metrics, max_running: int
    ) -> None:
        self._engine = engine
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._max_running = max_running
        self._started_at = int(time.time())

    def readiness(self) -> Readiness:
        """The server's state; with the engine's load when it takes requests (the gateway's
        balancer reads it at each health check)."""
        state = self._lifecycle.state
        if state != "ready":
            return Readiness(state, self._lifecycle.model_id, self._lifecycle.error)
        load = self._engine.load_stats()
        return Readiness(
            state,
            self._lifecycle.model_id,
            running=load.running,
            queued=load.queued,
            max_running=self._max_running,
        )

    def ensure_ready(self) -> None:
        """Refuse work (503) while the model loads or the server drains."""
        if self._lifecycle.state != "ready":
            raise UnavailableError(
                "the server is not ready (loading or shutting down)", retry_after=1
            )

    def resolve_model(self, name: str) -> str:
        """The served model's id for a request's `model` (its id, or `default`)."""
        if name not in ("default", self._engine.model_id):
            raise ModelNotFoundError(
                f"the model '{name}' does not exist; this server has '{self._engine.model_id}'",
                param="model",
            )
        return self._engine.model_id

    def model_info(self) -> ModelInfo:
        """The loaded model (also reachable as `default`)."""
        template = self._engine.has_chat_template
        kind: Literal["base", "chat"] | None = (
            None if template is None else "chat" if template else "base"
        )
        engine = self._engine
        return ModelInfo(engine.model_id, self._started_at, engine.context_length, kind)

    def start(self, job: Job, usage: RequestUsage) -> ChoiceStream:
        """Queue every choice now (so a full queue is an HTTP error, not a broken stream)."""
        generations: list[Generation] = []
        try:
            for params in job.choices:
                generations.append(self._engine.start(job.prompt, params, job.client))
        except BaseException:
            for generation in generations:
                generation.cancel()
            raise
        usage.prompt_tokens = len(job.prompt)
        self._metrics.prompt_tokens.inc(len(job.prompt))
        return ChoiceStream(generations, usage, self._metrics)

    async def run(self, job: Job, usage: RequestUsage) -> list[ChoiceResult]:
        """Run every choice to the end; raises if any of them failed."""
        results = [ChoiceResult() for _ in job.choices]
        async for index, event in self.start(job, usage):
            result = results[index]
            if isinstance(event, TokenOut):
                result.text += event.text
                result.tokens.append(event)
            else:
                result.finish = event
        return results

"""The generation service every inference route goes through, whatever its protocol: whether
the server takes work, which models it serves (resolving a request's `model` to a loaded
engine), and jobs run on their engine as measured streams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from llm_server.engine import EngineLoad, Generation
from llm_server.engine.types import TokenOut
from llm_server.errors import UnavailableError
from llm_server.generation.jobs import ChoiceResult, Job, RequestUsage
from llm_server.generation.stream import ChoiceStream
from llm_server.lifecycle import Lifecycle, State
from llm_server.models import ModelLease, ModelRegistry
from llm_server.models.registry import State as ModelState
from llm_server.observability.metrics import Metrics


@dataclass(frozen=True)
class ModelInfo:
    """A model as `/v1/models` describes it."""

    id: str
    created: int
    context_length: int
    # "base": no chat template (chat is a transcript); "chat": it has one; None: not known yet.
    kind: Literal["base", "chat"] | None
    state: ModelState
    aliases: tuple[str, ...] = ()
    sampling: dict[str, float] = field(default_factory=dict)  # the defaults it overrides


@dataclass(frozen=True)
class ModelReadiness:
    """One model in the readiness probe: its state, and its engine's load while it is loaded
    (None otherwise: no engine, no cache)."""

    id: str
    state: ModelState
    load: EngineLoad | None = None


@dataclass(frozen=True)
class Readiness:
    """What the readiness probe reports; the load only once ready."""

    state: State
    model: str | None
    error: str | None = None
    running: int | None = None
    queued: int | None = None
    max_running: int | None = None
    models: tuple[ModelReadiness, ...] = ()


class GenerationService:
    """Readiness, the models, and jobs run on their engines with their metrics."""

    def __init__(
        self,
        registry: ModelRegistry,
        lifecycle: Lifecycle,
        metrics: Metrics,
        load_wait_s: float = 60.0,
    ) -> None:
        self._registry = registry
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._load_wait_s = load_wait_s
        self._started_at = int(time.time())

    def readiness(self) -> Readiness:
        """The server's state and every model's (a loaded one's with its engine's load: its
        prefix caches' figures); with the engines' load together when it takes requests (the
        gateway's balancer reads it at each health check)."""
        state = self._lifecycle.state
        models = tuple(
            ModelReadiness(
                e.id,
                e.state,
                e.engine.load_stats() if e.state == "loaded" and e.engine is not None else None,
            )
            for e in self._registry.entries
        )
        if state != "ready":
            return Readiness(state, self._lifecycle.model_id, self._lifecycle.error, models=models)
        load = self._registry.load_stats()
        return Readiness(
            state,
            self._lifecycle.model_id,
            running=load.running,
            queued=load.queued,
            max_running=self._registry.max_running,
            models=models,
        )

    def ensure_ready(self) -> None:
        """Refuse work (503) while the models load or the server drains."""
        if self._lifecycle.state != "ready":
            raise UnavailableError(
                "the server is not ready (loading or shutting down)", retry_after=1
            )

    async def resolve_model(self, name: str) -> ModelLease:
        """The model a request's `model` names (id, alias or `default`), loaded and held until
        its work is queued: 404 if unknown, 503 with Retry-After while it loads."""
        return await self._registry.acquire(name, self._load_wait_s)

    def models(self) -> list[ModelInfo]:
        """Every model, loaded or not."""
        return [
            ModelInfo(
                entry.id,
                self._started_at,
                entry.context_length(),
                entry.kind(),
                entry.state,
                entry.spec.aliases,
                entry.spec.sampling,
            )
            for entry in self._registry.entries
        ]

    def start(self, job: Job, usage: RequestUsage) -> ChoiceStream:
        """Queue every choice now (so a full queue is an HTTP error, not a broken stream);
        then the engine counts the work and the job's hold on its model ends."""
        generations: list[Generation] = []
        try:
            for params in job.choices:
                generations.append(job.model.engine.start(job.prompt, params, job.client))
        except BaseException:
            for generation in generations:
                generation.cancel()
            raise
        finally:
            job.model.release()
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

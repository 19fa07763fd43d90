"""Liveness and readiness probes: the only routes that need no service token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from llm_server.dependencies import Generation
from llm_server.engine import EngineLoad
from llm_server.errors import error_body
from llm_server.generation.service import ModelReadiness

router = APIRouter(tags=["health"])


class PrefixCacheHealth(BaseModel):
    """A loaded model's prefix reuse: its host-memory cache, and prompt tokens found cached
    (in the KV context or host memory) against those read afresh. Counts since it loaded."""

    bytes: int = Field(description="KV state bytes the host-memory cache holds")
    capacity_bytes: int = Field(
        description="Its bound (LLM_PREFIX_CACHE_BYTES); 0: the host-memory cache is off"
    )
    entries: int = Field(description="Sequences it holds")
    hits: int = Field(description="Prompts whose prefix was restored from host memory")
    misses: int = Field(description="Prompts with 64+ tokens found neither there nor in context")
    restored_tokens: int = Field(description="Prompt tokens restored from host memory")
    reused_prompt_tokens: int = Field(
        description="Prompt tokens not recomputed: restored, or still in the KV context"
    )
    computed_prompt_tokens: int = Field(description="Prompt tokens read afresh")

    @classmethod
    def of(cls, load: EngineLoad) -> PrefixCacheHealth:
        cache = load.prefix_cache
        return cls(
            bytes=cache.bytes,
            capacity_bytes=cache.capacity_bytes,
            entries=cache.entries,
            hits=cache.hits,
            misses=cache.misses,
            restored_tokens=cache.restored_tokens,
            reused_prompt_tokens=load.prefix_tokens_reused,
            computed_prompt_tokens=load.prefix_tokens_computed,
        )


class ModelHealth(BaseModel):
    id: str
    state: Literal["loaded", "loading", "unloaded", "failed"]
    prefix_cache: PrefixCacheHealth | None = Field(
        default=None, description="Its prefix caches while it is loaded; null otherwise"
    )

    @classmethod
    def of(cls, model: ModelReadiness) -> ModelHealth:
        cache = PrefixCacheHealth.of(model.load) if model.load is not None else None
        return cls(id=model.id, state=model.state, prefix_cache=cache)


class HealthStatus(BaseModel):
    status: Literal["ok", "ready", "loading", "draining", "failed"]
    model: str | None = Field(default=None, description="The default model, once ready")
    running: int | None = Field(default=None, description="Sequences being decoded")
    queued: int | None = Field(default=None, description="Requests waiting for a slot")
    max_running: int | None = Field(default=None, description="Sequences decoded together")
    models: list[ModelHealth] | None = Field(
        default=None, description="Every model and its state (readiness only)"
    )


@router.get("/health/live", response_model=HealthStatus)
async def live() -> HealthStatus:
    """The process answers: it is alive, whatever the model's state."""
    return HealthStatus(status="ok")


@router.get(
    "/health/ready",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "model loading or server draining"}},
)
async def ready(generation: Generation) -> HealthStatus | JSONResponse:
    """200 once the model is loaded and the server takes requests; 503 before and while draining."""
    readiness = generation.readiness()
    models = [ModelHealth.of(model) for model in readiness.models]
    if readiness.state == "ready":
        return HealthStatus(
            status="ready",
            model=readiness.model,
            running=readiness.running,
            queued=readiness.queued,
            max_running=readiness.max_running,
            models=models,
        )
    body = HealthStatus(status=readiness.state, model=readiness.model, models=models).model_dump()
    if readiness.state == "failed":
        body |= error_body(readiness.error or "model failed to load", "service_unavailable")
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})

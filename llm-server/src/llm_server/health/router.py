"""Liveness and readiness probes: the only routes that need no service token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from llm_server.dependencies import Generation
from llm_server.errors import error_body

router = APIRouter(tags=["health"])


class ModelHealth(BaseModel):
    id: str
    state: Literal["loaded", "loading", "unloaded", "failed"]


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
    models = [ModelHealth(id=model, state=state) for model, state in readiness.models]
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

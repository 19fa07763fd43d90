"""`GET /metrics` in Prometheus' text format (a route, not a mount: no redirect to /metrics/)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from llm_server.observability.metrics import Metrics

router = APIRouter(tags=["observability"])


async def metrics_registry(request: Request) -> Metrics:
    registry: Metrics = request.app.state.metrics
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus metrics",
        }
    },
)
async def metrics(registry: Annotated[Metrics, Depends(metrics_registry)]) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)

"""Typed route dependencies shared by every router. The services are built once by
`create_app` and kept on the app; only these functions read them from there.

Every one is `async`: FastAPI runs a plain function in a worker thread, a hop per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llm_server.generation.jobs import RequestUsage
from llm_server.generation.service import GenerationService

CLIENT_HEADER = "x-client-id"


async def generation_service(request: Request) -> GenerationService:
    service: GenerationService = request.app.state.generation
    return service


async def ready_generation_service(
    service: Annotated[GenerationService, Depends(generation_service)],
) -> GenerationService:
    """The generation service, once the server takes requests (503 before and after)."""
    service.ensure_ready()
    return service


async def client_id(request: Request) -> str:
    """Fair scheduling key: the user id the gateway sends; requests without one share."""
    return request.headers.get(CLIENT_HEADER, "")[:128] or "anonymous"


def track_usage(request: Request) -> RequestUsage:
    """A usage record for this request, which the request log reads when the response ends;
    made once the request's job is built, so that a refused request logs no token counts."""
    usage = RequestUsage()
    request.state.usage = usage
    return usage


Generation = Annotated[GenerationService, Depends(generation_service)]
ReadyGeneration = Annotated[GenerationService, Depends(ready_generation_service)]
ClientId = Annotated[str, Depends(client_id)]

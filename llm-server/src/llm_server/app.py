"""Builds the FastAPI application; the process entry point lives in `__main__`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm_server import __version__
from llm_server.analyze.router import router as analyze_router
from llm_server.analyze.service import AnalyzeService
from llm_server.config import Settings
from llm_server.engine import Engine
from llm_server.errors import install_error_handlers
from llm_server.generation.service import GenerationService
from llm_server.health.router import router as health_router
from llm_server.lifecycle import Lifecycle
from llm_server.observability.logging import RequestLogMiddleware
from llm_server.observability.metrics import Metrics
from llm_server.observability.router import router as metrics_router
from llm_server.observability.tracing import Tracing, TracingMiddleware
from llm_server.openai.router import router as openai_router
from llm_server.openai.serving import OpenAIServing
from llm_server.security import BodySizeLimitMiddleware, ServiceTokenMiddleware


def create_app(
    settings: Settings, engine: Engine | None = None, tracing: Tracing | None = None
) -> FastAPI:
    """The llm-server app for `settings`, serving `engine` (the llama.cpp engine by default),
    traced by `tracing` (default: from the OTEL_* variables; off without an OTLP endpoint)."""
    tracing = tracing or Tracing(os.environ)
    if engine is None:
        from llm_server.engine.llama import LlamaEngine

        engine = LlamaEngine(settings)
    metrics = Metrics()
    metrics.bind_load(engine.load_stats)
    lifecycle = Lifecycle(engine, metrics)
    generation = GenerationService(engine, lifecycle, metrics, settings.max_running)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load in the background so that probes answer (503) while the model loads.
        loading = asyncio.create_task(lifecycle.start())
        yield
        await loading
        await lifecycle.stop()
        await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(
        title="llm-server",
        version=__version__,
        summary="llama.cpp behind an OpenAI-compatible API, for the gateway only.",
        lifespan=lifespan,
    )
    # Read only by the typed dependencies (`dependencies`, and each router's own).
    app.state.lifecycle = lifecycle
    app.state.metrics = metrics
    app.state.generation = generation
    app.state.openai = OpenAIServing(engine, generation, settings)
    app.state.analyze = AnalyzeService(engine)
    install_error_handlers(app)
    for router in (health_router, openai_router, analyze_router, metrics_router):
        app.include_router(router)
    # The last added runs first: log every request, then check the token, then the body size.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ServiceTokenMiddleware, token=settings.server_token.get_secret_value())
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    if tracing.recording:  # off: not even a pass-through layer
        app.add_middleware(TracingMiddleware, tracing=tracing)
    return app

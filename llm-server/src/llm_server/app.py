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
from llm_server.models import Catalog, EngineFactory, ModelRegistry, ModelSpec, load_catalog
from llm_server.observability.logging import RequestLogMiddleware
from llm_server.observability.metrics import Metrics
from llm_server.observability.router import router as metrics_router
from llm_server.observability.tracing import Tracing, TracingMiddleware
from llm_server.openai.router import router as openai_router
from llm_server.openai.serving import OpenAIServing
from llm_server.security import BodySizeLimitMiddleware, ServiceTokenMiddleware


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    tracing: Tracing | None = None,
    *,
    catalog: Catalog | None = None,
    engines: EngineFactory | None = None,
) -> FastAPI:
    """The llm-server app for `settings`, traced by `tracing` (default: from the OTEL_*
    variables; off without an OTLP endpoint). It serves the models of `catalog` (default: read
    from `settings`, LLM_MODELS_FILE or the one model), each on an engine `engines` makes (the
    llama.cpp engine by default); without a models file, `engine` may be given instead."""
    tracing = tracing or Tracing(os.environ)
    catalog = catalog or load_catalog(settings)
    factory = engines or llama_engine
    if engine is None and not catalog.from_file:
        engine = factory(catalog.models[0])
    registry = ModelRegistry(catalog, factory, engine=engine)
    metrics = Metrics()
    metrics.bind_load(registry.load_stats)
    metrics.bind_models(registry.statuses, catalog.default)
    lifecycle = Lifecycle(registry)
    generation = GenerationService(registry, lifecycle, metrics, settings.model_load_wait_s)

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
    app.state.openai = OpenAIServing(generation, settings)
    app.state.analyze = AnalyzeService(generation)
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


def llama_engine(spec: ModelSpec) -> Engine:
    """The llama.cpp engine of one model (imported only when a real model is served)."""
    from llm_server.engine.llama import LlamaEngine

    return LlamaEngine(spec.settings, chat_template=spec.chat_template)

"""Builds the FastAPI application; the process entry point lives in `__main__`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm_server import __version__
from llm_server.config import Settings
from llm_server.engine import Engine
from llm_server.errors import install_error_handlers
from llm_server.health.router import router as health_router
from llm_server.lifecycle import Lifecycle
from llm_server.security import BodySizeLimitMiddleware, ServiceTokenMiddleware


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The llm-server app for `settings`, serving `engine` (the llama.cpp engine by default)."""
    if engine is None:
        from llm_server.engine.llama import LlamaEngine

        engine = LlamaEngine(settings)
    lifecycle = Lifecycle(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load in the background so that probes answer (503) while the model loads.
        loading = asyncio.create_task(lifecycle.start())
        yield
        await loading
        await lifecycle.stop()

    app = FastAPI(
        title="llm-server",
        version=__version__,
        summary="llama.cpp behind an OpenAI-compatible API, for the gateway only.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.lifecycle = lifecycle
    install_error_handlers(app)
    app.include_router(health_router)
    # Outermost first: the token check runs before anything reads the body.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ServiceTokenMiddleware, token=settings.server_token.get_secret_value())
    return app

"""Shared fixtures: settings for tests and a fake engine for the HTTP layer."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import httpx
import pytest

from llm_server.app import create_app
from llm_server.config import Settings
from llm_server.engine import EngineLoad

TOKEN = "t" * 40


class FakeEngine:
    """Stands in for llama.cpp in HTTP-layer tests; `gate` holds loading until set."""

    def __init__(self, *, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fail = fail
        self.closed = False

    @property
    def model_id(self) -> str:
        return "fake-model"

    @property
    def context_length(self) -> int:
        return 512

    def load(self) -> None:
        self.gate.wait(timeout=10)
        if self.fail:
            raise ValueError("not a GGUF file")

    def load_stats(self) -> EngineLoad:
        return EngineLoad(running=0, queued=0)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def settings() -> Settings:
    return Settings(app_env="test", server_token=TOKEN, max_body_bytes=4096)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def client(settings: Settings, engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http


AUTH = {"Authorization": f"Bearer {TOKEN}"}

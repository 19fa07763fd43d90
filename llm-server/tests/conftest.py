"""Shared fixtures: settings for tests and a fake engine for the HTTP layer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from llm_server.app import create_app
from llm_server.config import Settings
from tests.fakes import FakeEngine

TOKEN = "t" * 40


@pytest.fixture
def settings() -> Settings:
    return Settings(app_env="test", server_token=TOKEN, max_body_bytes=4096)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def client(settings: Settings, engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with served(create_app(settings, engine)) as http:
        yield http


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` in process, once it is ready; the app is shut down after."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        await wait_ready(http)
        yield http


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def wait_ready(http: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
    """Tests of inference routes start once the (fake or real) model is loaded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await http.get("/health/ready")).status_code == 200:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the app never became ready")

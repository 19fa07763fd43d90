from __future__ import annotations

import asyncio

import httpx

from llm_server.app import create_app
from llm_server.config import Settings
from tests.fakes import FakeEngine, used_prefix_cache


async def test_live_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_once_the_model_is_loaded(client: httpx.AsyncClient) -> None:
    for _ in range(100):
        response = await client.get("/health/ready")
        if response.status_code == 200:
            break
        await asyncio.sleep(0.01)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": "fake-model",
        "running": 0,
        "queued": 0,
        "max_running": 16,
        "models": [{"id": "fake-model", "state": "loaded", "prefix_cache": NO_CACHE}],
    }


# The fake engine has no host-memory cache (capacity 0: off) and reuses nothing.
NO_CACHE = {
    "bytes": 0,
    "capacity_bytes": 0,
    "entries": 0,
    "hits": 0,
    "misses": 0,
    "restored_tokens": 0,
    "reused_prompt_tokens": 0,
    "computed_prompt_tokens": 0,
}


async def test_ready_reports_the_engine_s_prefix_caches(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.prefix_cache = used_prefix_cache()
    [model] = (await client.get("/health/ready")).json()["models"]
    assert model["prefix_cache"] == NO_CACHE | {
        "bytes": 300,
        "capacity_bytes": 1000,
        "entries": 1,
        "hits": 2,
        "misses": 1,
        "restored_tokens": 5,
    }


async def _probe_while(engine: FakeEngine, settings: Settings) -> httpx.Response:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        await asyncio.sleep(0.05)
        response = await http.get("/health/ready")
        engine.gate.set()
        return response


async def test_not_ready_while_loading(settings: Settings) -> None:
    engine = FakeEngine()
    engine.gate.clear()
    response = await _probe_while(engine, settings)
    assert response.status_code == 503
    assert response.json()["status"] == "loading"
    assert response.headers["retry-after"] == "1"


async def test_a_failed_load_stays_unready_and_says_why(settings: Settings) -> None:
    response = await _probe_while(FakeEngine(fail=True), settings)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failed"
    assert "not a GGUF file" in body["error"]["message"]


async def test_shutdown_closes_the_engine(settings: Settings) -> None:
    engine = FakeEngine()
    await _probe_while(engine, settings)
    assert engine.closed

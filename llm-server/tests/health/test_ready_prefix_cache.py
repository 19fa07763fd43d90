"""`/health/ready` reports each loaded model's prefix caches (the gateway's admin page shows
them), on the real model: a history evicted by other prompts is saved to host memory, and
resent it is restored; the figures move accordingly. With the cache off, capacity 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from llm_server.app import create_app
from llm_server.config import Settings
from tests.conftest import AUTH, TOKEN, served
from tests.engine.test_host_prefix_cache import HISTORY, NEXT_TURN, OTHERS
from tests.health.test_router import NO_CACHE

pytestmark = pytest.mark.model


def settings(cache_bytes: int) -> Settings:
    # Room for the history or one other prompt at a time, so each evicts the one before.
    return Settings(
        app_env="test",
        server_token=TOKEN,
        n_threads=2,
        max_running=1,
        n_ctx=256,
        context_length=256,
        flash_attention=False,
        prefix_cache_bytes=cache_bytes,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with served(create_app(settings(64 << 20))) as http:
        http.timeout = httpx.Timeout(120)
        yield http


async def complete(http: httpx.AsyncClient, prompt: str) -> int:
    """Runs a prompt; its prompt token count."""
    body = {"prompt": prompt, "max_tokens": 8, "temperature": 0, "ignore_eos": True}
    response = await http.post("/v1/completions", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    prompt_tokens: int = response.json()["usage"]["prompt_tokens"]
    return prompt_tokens


async def cache(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/health/ready")
    assert response.status_code == 200
    [model] = response.json()["models"]
    assert model["state"] == "loaded"
    figures: dict[str, Any] = model["prefix_cache"]
    return figures


async def test_a_save_and_a_restore_move_the_figures(http: httpx.AsyncClient) -> None:
    start = await cache(http)
    assert start == NO_CACHE | {"capacity_bytes": 64 << 20}
    read = await complete(http, HISTORY)
    for other in OTHERS[:2]:
        read += await complete(http, other)
    saved = await cache(http)
    assert saved["entries"] >= 1  # the history, evicted by the first document
    assert 0 < saved["bytes"] <= saved["capacity_bytes"]
    assert saved["hits"] == 0
    assert saved["misses"] >= 2  # each long prompt found nowhere
    # Only the prompts' shared openings (BOS, "Document") can be found in the context.
    assert saved["reused_prompt_tokens"] < 16
    assert saved["computed_prompt_tokens"] + saved["reused_prompt_tokens"] == read

    resent = await complete(http, NEXT_TURN)
    restored = await cache(http)
    assert restored["hits"] == 1
    assert restored["misses"] == saved["misses"]
    gained = restored["restored_tokens"]
    assert gained >= 64
    assert restored["reused_prompt_tokens"] - saved["reused_prompt_tokens"] == gained
    assert restored["computed_prompt_tokens"] - saved["computed_prompt_tokens"] == resent - gained


async def test_with_the_cache_off_it_reports_capacity_0_and_context_reuse() -> None:
    async with served(create_app(settings(0))) as http:
        http.timeout = httpx.Timeout(120)
        first = await complete(http, HISTORY)
        await complete(http, NEXT_TURN)
        figures = await cache(http)
    assert figures["capacity_bytes"] == figures["bytes"] == figures["entries"] == 0
    assert figures["hits"] == figures["misses"] == figures["restored_tokens"] == 0
    # The next turn found the history in the context (all of it but what the answer changed).
    assert figures["reused_prompt_tokens"] >= first - 8

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import AUTH


@pytest.mark.parametrize(
    "path",
    [
        "/openapi.json",
        "//openapi.json",
        "/openapi.json/",
        "/%6fpenapi.json",
        "/health/../openapi.json",
        "/health/live/",
        "//health/ready",
        "/health/%2e%2e/openapi.json",
        "/no-such-route",
    ],
)
async def test_every_spelling_but_the_probes_needs_the_token(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer wrong", f"bearer {'t' * 40}", f"Bearer {'t' * 40}x"]
)
async def test_a_wrong_token_is_refused(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/openapi.json", headers={"Authorization": header})
    assert response.status_code == 401


async def test_the_right_token_passes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json", headers=AUTH)
    assert response.status_code == 200
    assert "/health/ready" in response.json()["paths"]


async def test_an_unknown_route_is_a_404_in_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_declared_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/nowhere", headers=AUTH, content=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_an_oversized_streamed_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    # No Content-Length: the limit must hold while the body is read, on a real POST route.
    response = await client.post("/v1/completions", headers=AUTH, content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

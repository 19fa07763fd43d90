"""What a request that omits the sampling fields gets (llama-server's defaults), how a client
asks for the whole distribution, and the extension field `min_p` from outside."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import AUTH
from tests.fakes import FakeEngine

MESSAGES = [{"role": "user", "content": "hi"}]
ROUTES = {
    "/v1/chat/completions": {"messages": MESSAGES, "max_tokens": 4},
    "/v1/completions": {"prompt": "hi", "max_tokens": 4},
    "/generate": {"prompt": "hi", "max_tokens": 4},
}


@pytest.mark.parametrize("route", ROUTES)
async def test_omitted_fields_get_llama_servers_defaults(
    client: httpx.AsyncClient, engine: FakeEngine, route: str
) -> None:
    response = await client.post(route, headers=AUTH, json=ROUTES[route])
    assert response.status_code == 200, response.text
    params = engine.started[-1].params
    assert (params.top_k, params.top_p, params.min_p) == (40, 0.95, 0.05)
    # temperature is OpenAI's field and keeps OpenAI's default
    assert params.temperature == 1.0


@pytest.mark.parametrize("route", ROUTES)
async def test_the_whole_distribution_on_request(
    client: httpx.AsyncClient, engine: FakeEngine, route: str
) -> None:
    body = {**ROUTES[route], "top_k": 0, "top_p": 1, "min_p": 0, "temperature": 0.7}
    response = await client.post(route, headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    params = engine.started[-1].params
    assert (params.top_k, params.top_p, params.min_p, params.temperature) == (0, 1.0, 0.0, 0.7)


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.1", None, True, [0.1]])
async def test_min_p_out_of_range_or_of_another_type_is_refused(
    client: httpx.AsyncClient, engine: FakeEngine, value: object
) -> None:
    body = {**ROUTES["/v1/chat/completions"], "min_p": value}
    response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "min_p"
    assert engine.started == []


async def test_models_list_the_defaults(client: httpx.AsyncClient) -> None:
    [card] = (await client.get("/v1/models", headers=AUTH)).json()["data"]
    assert card["sampling_defaults"] == {
        "temperature": 1.0,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
    }

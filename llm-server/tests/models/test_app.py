"""Several models through the HTTP API, on scripted engines: listing, routing by `model` on
every route, per-model sampling defaults, readiness and metrics per model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from llm_server.app import create_app
from llm_server.config import Settings
from llm_server.models import Catalog, ModelSpec
from tests.conftest import AUTH, TOKEN, served
from tests.models.test_registry import Engines


def catalog(settings: Settings) -> Catalog:
    return Catalog(
        (
            ModelSpec(
                id="base-model",
                settings=settings,
                aliases=("base",),
                keep_loaded=True,
                kind="base",
                context_length=64,
            ),
            ModelSpec(
                id="chat-model",
                settings=settings,
                keep_loaded=False,
                sampling={"temperature": 0.5, "top_k": 7},
                kind="chat",
                context_length=48,
            ),
        ),
        default=0,
        from_file=True,
    )


@pytest.fixture
def engines() -> Engines:
    return Engines()


@pytest.fixture
async def http(engines: Engines) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(app_env="test", server_token=TOKEN, model_load_wait_s=5)
    async with served(create_app(settings, catalog=catalog(settings), engines=engines)) as client:
        yield client


async def test_every_model_is_listed_with_its_state(http: httpx.AsyncClient) -> None:
    body = (await http.get("/v1/models", headers=AUTH)).json()
    cards = {card["id"]: card for card in body["data"]}
    assert cards["base-model"]["state"] == "loaded"
    assert cards["base-model"]["aliases"] == ["base"]
    assert cards["base-model"]["kind"] == "base"
    assert cards["chat-model"]["state"] == "unloaded"
    assert cards["chat-model"]["kind"] == "chat"  # from its file, before it is loaded
    assert cards["chat-model"]["context_length"] == 48
    assert cards["chat-model"]["sampling_defaults"] == {
        "temperature": 0.5,
        "top_k": 7,
        "top_p": 0.95,
        "min_p": 0.05,
    }
    ready = (await http.get("/health/ready")).json()
    assert ready["model"] == "base-model"
    assert [(m["id"], m["state"]) for m in ready["models"]] == [
        ("base-model", "loaded"),
        ("chat-model", "unloaded"),
    ]
    # A loaded model reports its prefix caches (the fake's: off), one not loaded null.
    assert ready["models"][0]["prefix_cache"]["capacity_bytes"] == 0
    assert ready["models"][1]["prefix_cache"] is None


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/completions", {"prompt": "hi"}),
        ("/generate", {"prompt": "hi"}),
    ],
)
async def test_a_request_is_served_by_the_model_it_names_with_its_defaults(
    http: httpx.AsyncClient, engines: Engines, route: str, body: dict[str, object]
) -> None:
    response = await http.post(route, headers=AUTH, json={**body, "model": "chat-model"})
    assert response.status_code == 200, response.text
    if route != "/generate":
        assert response.json()["model"] == "chat-model"
    [engine] = engines.made["chat-model"]
    params = engine.started[-1].params
    assert (params.temperature, params.top_k, params.top_p) == (0.5, 7, 0.95)
    # A field the request sends wins over the model's default.
    sent = {**body, "model": "chat-model", "top_k": 3}
    assert (await http.post(route, headers=AUTH, json=sent)).status_code == 200
    assert engine.started[-1].params.top_k == 3
    # The other model keeps the API's defaults.
    response = await http.post(route, headers=AUTH, json={**body, "model": "BASE"})
    assert response.status_code == 200, response.text
    assert engines.made["base-model"][0].started[-1].params.top_k == 40
    models = (await http.get("/health/ready")).json()["models"]
    assert ("chat-model", "loaded") in [(m["id"], m["state"]) for m in models]


async def test_analyze_uses_the_named_model(http: httpx.AsyncClient, engines: Engines) -> None:
    response = await http.post(
        "/analyze", headers=AUTH, json={"text": "a b c", "model": "chat-model"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "chat-model"
    assert "chat-model" in engines.made


@pytest.mark.parametrize("name", ["gpt-4", "chat-model-2", "", "base model"])
async def test_an_unknown_model_is_a_404_on_every_route(http: httpx.AsyncClient, name: str) -> None:
    for route, body in [
        ("/v1/completions", {"prompt": "hi"}),
        ("/generate", {"prompt": "hi"}),
        ("/analyze", {"text": "hi"}),
    ]:
        response = await http.post(route, headers=AUTH, json={**body, "model": name})
        assert response.status_code == 404, (route, response.text)
        error = response.json()["error"]
        assert error["code"] == "model_not_found"
        assert "'base-model', 'chat-model'" in error["message"]


@pytest.mark.parametrize("value", [7, None, ["chat-model"], {"id": "chat-model"}])
async def test_a_model_of_another_type_is_a_422(http: httpx.AsyncClient, value: object) -> None:
    response = await http.post(
        "/v1/completions", headers=AUTH, json={"prompt": "hi", "model": value}
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "model"


async def test_a_model_still_loading_is_a_503_with_retry_after(
    engines: Engines,
) -> None:
    engines.gate_closed.add("chat-model")
    settings = Settings(app_env="test", server_token=TOKEN, model_load_wait_s=0)
    async with served(create_app(settings, catalog=catalog(settings), engines=engines)) as http:
        response = await http.post(
            "/v1/completions", headers=AUTH, json={"prompt": "hi", "model": "chat-model"}
        )
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["message"] == (
            "the model 'chat-model' is loading; retry in a few seconds"
        )
        models = (await http.get("/health/ready")).json()["models"]
        assert {"id": "chat-model", "state": "loading", "prefix_cache": None} in models
        metrics = (await http.get("/metrics", headers=AUTH)).text
        assert 'llm_model_state{model="chat-model",state="loading"} 1.0' in metrics
        engines.last("chat-model").gate.set()


async def test_metrics_per_model(http: httpx.AsyncClient) -> None:
    await http.post("/generate", headers=AUTH, json={"prompt": "hi", "model": "chat-model"})
    text = (await http.get("/metrics", headers=AUTH)).text
    assert 'llm_model_state{model="chat-model",state="loaded"} 1.0' in text
    assert 'llm_model_state{model="chat-model",state="unloaded"} 0.0' in text
    assert 'llm_model_loads_total{model="chat-model"} 1.0' in text
    assert 'llm_model_loads_total{model="base-model"} 1.0' in text
    assert 'llm_model_unloads_total{model="chat-model",reason="idle"} 0.0' in text
    assert 'llm_model_last_load_seconds{model="chat-model"}' in text

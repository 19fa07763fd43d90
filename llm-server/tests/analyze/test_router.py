from __future__ import annotations

import math

import httpx

from tests.conftest import AUTH


async def test_tokens_logprobs_and_perplexity(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/analyze", headers=AUTH, json={"text": "aa bbb c", "top_logprobs": 2}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "fake-model"
    assert body["token_count"] == 4
    assert body["tokens"][0]["logprob"] is None
    assert [t["logprob"] for t in body["tokens"][1:]] == [-2.0, -3.0, -1.0]
    assert len(body["tokens"][1]["top_logprobs"]) == 2
    assert math.isclose(body["perplexity"], math.exp(2.0))
    assert body["classification"] is None


async def test_labels_become_probabilities(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/analyze",
        headers=AUTH,
        json={"text": "x", "labels": ["ab", "abcd"], "template": "Q: {text} A:"},
    )
    scores = {s["label"]: s for s in response.json()["classification"]}
    assert math.isclose(scores["ab"]["probability"] + scores["abcd"]["probability"], 1.0)
    # The fake engine scores a token of length L at -L: the shorter label is likelier.
    assert scores["ab"]["probability"] > scores["abcd"]["probability"]
    assert math.isclose(scores["ab"]["probability"], 1 / (1 + math.exp(-2)))


async def test_a_template_without_the_text_marker_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/analyze", headers=AUTH, json={"text": "x", "labels": ["a"], "template": "no marker"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "template"


async def test_empty_text_and_unknown_fields_are_422(client: httpx.AsyncClient) -> None:
    for body in ({"text": ""}, {"text": "x", "file": "/etc/passwd"}, {"text": "x", "labels": [""]}):
        response = await client.post("/analyze", headers=AUTH, json=body)
        assert response.status_code == 422


async def test_text_longer_than_the_context_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/analyze", headers=AUTH, json={"text": "w " * 80})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"

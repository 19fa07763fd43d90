from __future__ import annotations

import math
import threading

import httpx

from tests.conftest import AUTH
from tests.fakes import FakeEngine


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


async def test_the_text_marker_may_appear_only_once(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    """1,666 copies of {text} and 8 labels made the server tokenize a 40 MB prompt 9 times
    (500 copies here: the test body limit is 4 kB)."""
    body = {"text": "x " * 100, "labels": [f"l{i}" for i in range(8)], "template": "{text}" * 500}
    response = await client.post("/analyze", headers=AUTH, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "template"
    assert "exactly once" in error["message"]
    assert "500 times" in error["message"]
    assert engine.tokenized == 0


async def test_a_prompt_over_the_byte_cap_is_refused_before_tokenizing(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    cap = engine.context_length * engine.max_token_bytes
    for body in (
        {"text": "y" * (cap + 1)},
        {"text": "y" * (cap - 10), "labels": ["a", "b"], "template": "Topic of {text}:"},
    ):
        response = await client.post("/analyze", headers=AUTH, json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert f"at most {cap} bytes" in error["message"]
    assert engine.tokenized == 0


async def test_analysis_tokenizes_off_the_event_loop(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    body = {"text": "aa b", "labels": ["x", "y"], "template": "T: {text}"}
    response = await client.post("/analyze", headers=AUTH, json=body)
    assert response.status_code == 200
    assert engine.tokenized == 4  # the text, the prompt, and one prompt per label
    assert threading.main_thread().ident not in engine.tokenizing_threads


async def test_a_blank_label_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/analyze", headers=AUTH, json={"text": "x", "labels": [" "]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "labels"

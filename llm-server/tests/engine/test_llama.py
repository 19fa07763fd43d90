"""The real engine: llama.cpp with the embedded Gemma 3 270M, short generations, fixed seeds."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from llm_server.app import create_app
from llm_server.config import Settings
from tests.conftest import AUTH, TOKEN, wait_ready

pytestmark = pytest.mark.model
PROMPT = {"prompt": "The capital of France is", "max_tokens": 16, "temperature": 0}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def real() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        app_env="test",
        server_token=TOKEN,
        n_threads=2,
        context_length=256,
        n_ctx=2048,
        max_running=4,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://real", timeout=120) as http,
    ):
        await wait_ready(http)
        yield http


async def completion(http: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    response = await http.post("/v1/completions", headers=AUTH, json={**PROMPT, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def text_of(body: dict[str, object]) -> str:
    choices = body["choices"]
    assert isinstance(choices, list)
    return str(choices[0]["text"])


async def test_greedy_and_seeded_generation_repeat(real: httpx.AsyncClient) -> None:
    first = text_of(await completion(real))
    assert first.strip()
    assert text_of(await completion(real)) == first
    seeded = {"temperature": 1.0, "seed": 1234, "top_k": 40}
    assert text_of(await completion(real, **seeded)) == text_of(await completion(real, **seeded))


async def test_a_stop_string_cuts_the_answer(real: httpx.AsyncClient) -> None:
    full = text_of(await completion(real))
    words = full.split()
    assert len(words) >= 3
    stop = words[2]
    body = await completion(real, stop=[stop])
    assert text_of(body) == full[: full.index(stop)]
    assert body["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


async def test_streaming_gives_the_same_text_token_by_token(real: httpx.AsyncClient) -> None:
    full = text_of(await completion(real))
    response = await real.post("/v1/completions", headers=AUTH, json={**PROMPT, "stream": True})
    blocks = [b.removeprefix("data: ") for b in response.text.split("\n\n") if b]
    assert blocks[-1] == "[DONE]"
    pieces = [json.loads(b)["choices"][0]["text"] for b in blocks[:-1]]
    assert len(pieces) == 17  # 16 tokens and the finish chunk
    assert "".join(pieces) == full


async def test_context_overflow_is_400_not_truncation(real: httpx.AsyncClient) -> None:
    response = await real.post(
        "/v1/completions", headers=AUTH, json={"prompt": "word " * 200, "max_tokens": 100}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_chat_on_the_base_model_is_a_transcript(real: httpx.AsyncClient) -> None:
    """The embedded Gemma has no chat template; its chat is `User: …\nAssistant:`."""
    response = await real.post(
        "/v1/chat/completions",
        headers=AUTH,
        json={
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 3,
        },
    )
    body = response.json()
    scored = await real.post(
        "/analyze", headers=AUTH, json={"text": "User: Say hello.\nAssistant:"}
    )
    assert body["usage"]["prompt_tokens"] == scored.json()["token_count"]  # <bos> + the text
    content = body["choices"][0]["logprobs"]["content"]
    for token in content:
        assert token["logprob"] <= 0
        assert len(token["top_logprobs"]) == 3
        assert token["logprob"] <= token["top_logprobs"][0]["logprob"] + 1e-5
    [card] = (await real.get("/v1/models", headers=AUTH)).json()["data"]
    assert card["kind"] == "base"


async def test_base_model_answers_end_at_the_next_turn(real: httpx.AsyncClient) -> None:
    """The answer stops where the model starts the next `User:` (or another
    `Assistant:`) line, so it never holds one; without the stops these answers ran on into
    `\nAssistant: 2. …` and `\nStudent: …` lines."""
    ended = 0
    for prompt in (
        "Name three colours.",
        "Write one sentence about the sea.",
        "Translate 'good morning' into French.",
        "Describe a cat in five words.",
    ):
        response = await real.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 48,
                "temperature": 0,
            },
        )
        [choice] = response.json()["choices"]
        answer = choice["message"]["content"]
        assert "User:" not in answer, (prompt, answer)
        assert "Assistant:" not in answer, (prompt, answer)
        ended += choice["finish_reason"] == "stop"
    # All ten short questions of the README's table end by themselves; here, with a smaller
    # context and one request at a time, near-ties may let one run to its 48 tokens.
    assert ended >= 1


async def test_json_schema_output_parses(real: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"year": {"type": "integer"}},
        "required": ["year"],
        "additionalProperties": False,
    }
    response = await real.post(
        "/v1/chat/completions",
        headers=AUTH,
        json={
            "messages": [{"role": "user", "content": "When did WW2 end? Answer in JSON."}],
            "max_tokens": 40,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": schema},
            },
        },
    )
    content = response.json()["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content)["year"], int)


async def test_analyze_scores_every_token(real: httpx.AsyncClient) -> None:
    response = await real.post(
        "/analyze",
        headers=AUTH,
        json={
            "text": "The cat sat on the mat.",
            "top_logprobs": 3,
            "labels": ["animals", "finance"],
            "template": "Text: {text}\nTopic:",
        },
    )
    body = response.json()
    tokens = body["tokens"]
    assert body["token_count"] == len(tokens) == 8  # <bos> + 7 pieces
    assert "".join(t["token"] for t in tokens[1:]) == "The cat sat on the mat."
    for token in tokens[1:]:
        assert token["logprob"] <= 0
        tops = [a["logprob"] for a in token["top_logprobs"]]
        assert tops == sorted(tops, reverse=True)
        assert token["logprob"] <= tops[0] + 1e-5
    mean = sum(t["logprob"] for t in tokens[1:]) / 7
    assert math.isclose(body["perplexity"], math.exp(-mean), rel_tol=1e-6)
    probabilities = {c["label"]: c["probability"] for c in body["classification"]}
    assert math.isclose(sum(probabilities.values()), 1.0, rel_tol=1e-6)
    assert probabilities["animals"] > probabilities["finance"]


def schema_chat(schema: dict[str, Any], **fields: object) -> dict[str, object]:
    return {
        "messages": [{"role": "user", "content": "Answer in JSON."}],
        "max_tokens": 8,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        **fields,
    }


async def test_schemas_nothing_can_satisfy_are_the_clients_400(real: httpx.AsyncClient) -> None:
    """Empty choices, and a grammar llama.cpp refuses to parse, were a 503 (a server fault)."""
    schemas: list[dict[str, Any]] = [
        {"enum": []},
        {"anyOf": []},
        {"type": []},
        {"type": "string", "pattern": "^[^\\s\\S]$"},
    ]
    for schema in schemas:
        response = await real.post("/v1/chat/completions", headers=AUTH, json=schema_chat(schema))
        assert response.status_code == 400, (schema, response.text)
        assert response.json()["error"]["code"] == "invalid_json_schema"


async def test_a_grammar_that_dead_ends_does_not_abort_the_process(
    real: httpx.AsyncClient,
) -> None:
    """A pattern demanding a NUL character leaves the grammar no token: llama.cpp accepted a
    refused token and threw from C++, which killed the whole server."""
    schema = {"type": "string", "pattern": "^\\x00$"}
    response = await real.post("/v1/chat/completions", headers=AUTH, json=schema_chat(schema))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json_schema"
    streamed = await real.post(
        "/v1/chat/completions", headers=AUTH, json=schema_chat(schema, stream=True)
    )
    last = json.loads(streamed.text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["type"] == "invalid_request_error"
    assert (await completion(real))["choices"]  # the server still answers


async def test_a_prompt_near_the_limit_without_max_tokens_is_answered(
    real: httpx.AsyncClient,
) -> None:
    """The context is 256 tokens here; no length sent means whatever room is left."""
    for route, body in (
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "word " * 240}]}),
        ("/v1/completions", {"prompt": "word " * 250}),
    ):
        response = await real.post(route, headers=AUTH, json={**body, "temperature": 0})
        assert response.status_code == 200, response.text
        usage = response.json()["usage"]
        assert usage["prompt_tokens"] + usage["completion_tokens"] <= 256
        assert response.headers["x-prompt-tokens"] == str(usage["prompt_tokens"])


async def test_an_overflow_is_400_up_front_naming_the_field_sent(
    real: httpx.AsyncClient,
) -> None:
    body = {"messages": [{"role": "user", "content": "word " * 240}], "stream": True}
    response = await real.post(
        "/v1/chat/completions", headers=AUTH, json={**body, "max_completion_tokens": 100}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "max_completion_tokens"
    assert "context is 256 tokens" in error["message"]
    response = await real.post(
        "/v1/chat/completions",
        headers=AUTH,
        json={**body, "messages": [{"role": "user", "content": "word " * 400}]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    assert "the prompt has" in response.json()["error"]["message"]


async def test_the_prompt_token_header_matches_the_real_count(real: httpx.AsyncClient) -> None:
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4}
    plain = await real.post("/v1/chat/completions", headers=AUTH, json=body)
    count = plain.json()["usage"]["prompt_tokens"]
    assert plain.headers["x-prompt-tokens"] == str(count)
    async with real.stream(
        "POST", "/v1/chat/completions", headers=AUTH, json={**body, "stream": True}
    ) as streamed:
        assert streamed.headers["x-prompt-tokens"] == str(count)


async def test_a_lone_surrogate_is_the_clients_400(real: httpx.AsyncClient) -> None:
    """JSON can carry "\\ud800", which no UTF-8 text holds: encoding it failed with a 500."""
    for route, body in (
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a\ud800"}]}),
        ("/v1/completions", {"prompt": "a\ud800"}),
        ("/generate", {"prompt": "a\ud800"}),
        ("/analyze", {"text": "a\ud800"}),
        ("/analyze", {"text": "x", "labels": ["a"], "template": "\ud800 {text}"}),
        ("/analyze", {"text": "x", "labels": ["a\ud800"]}),
    ):
        raw = json.dumps(body)  # ASCII, the surrogate as an escape (httpx would refuse it)
        headers = {**AUTH, "content-type": "application/json"}
        response = await real.post(route, headers=headers, content=raw)
        # 422 where pydantic's constrained strings refuse it first, 400 from the tokenizer.
        assert response.status_code in (400, 422), (route, response.text)
        assert response.json()["error"]["code"] in ("invalid_text", "invalid_value")


async def streamed_tokens(
    http: httpx.AsyncClient, route: str, body: dict[str, object]
) -> tuple[dict[int, int], dict[int, int], dict[int, str], int]:
    """What a streaming client can count: per choice, the logprobs entries and the chunks
    carrying a token (not the role or finish chunk), the finish reasons, and the usage."""
    response = await http.post(
        route,
        headers=AUTH,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert response.status_code == 200, response.text
    entries: dict[int, int] = {}
    chunks: dict[int, int] = {}
    finishes: dict[int, str] = {}
    usage = None
    for block in response.text.split("\n\n"):
        data = block.removeprefix("data: ")
        if not data or data == "[DONE]":
            continue
        event = json.loads(data)
        usage = event.get("usage") or usage
        for choice in event["choices"]:
            index = choice["index"]
            if choice["finish_reason"] is not None:
                finishes[index] = choice["finish_reason"]
                continue
            if (choice.get("delta") or {}).get("role"):
                continue
            chunks[index] = chunks.get(index, 0) + 1
            logprobs = choice.get("logprobs") or {}
            counted = logprobs.get("content") or logprobs.get("tokens") or []
            entries[index] = entries.get(index, 0) + len(counted)
    assert usage is not None
    return entries, chunks, finishes, usage["completion_tokens"]


async def test_usage_counts_exactly_the_tokens_a_client_receives(
    real: httpx.AsyncClient,
) -> None:
    """The end-of-generation token, and a token completing a stop string, were
    counted in usage.completion_tokens but never sent (their text is empty): usage was one
    more than a client could count, per choice. Streamed and not, chat and completions, n=2,
    with logprobs (entries) and without (chunks)."""
    # A schema's grammar allows only the end-of-generation token once the object is closed.
    eos = schema_chat(
        {
            "type": "object",
            "properties": {"year": {"type": "integer"}},
            "required": ["year"],
            "additionalProperties": False,
        },
        max_tokens=40,
        n=2,
    )
    # The greedy answer is " the capital of the country of France. …": the stop string is a
    # whole token, so the token that completes it adds no text.
    stop = {**PROMPT, "stop": [" country"], "n": 2}
    cases: list[tuple[str, dict[str, object], dict[str, object]]] = [
        ("/v1/chat/completions", eos, {"logprobs": True}),
        ("/v1/chat/completions", eos, {}),
        ("/v1/completions", stop, {"logprobs": 1}),
        ("/v1/completions", stop, {}),
    ]
    for route, body, logprobs in cases:
        entries, chunks, finishes, billed = await streamed_tokens(real, route, {**body, **logprobs})
        assert finishes == {0: "stop", 1: "stop"}, (route, finishes)
        assert sum(chunks.values()) == billed, (route, logprobs, chunks, billed)
        if logprobs:
            assert entries == chunks, (route, entries, chunks)
            plain = await real.post(route, headers=AUTH, json={**body, **logprobs})
            counted = 0
            for choice in plain.json()["choices"]:
                assert choice["finish_reason"] == "stop"
                counted += len(choice["logprobs"].get("content") or choice["logprobs"]["tokens"])
            assert counted == plain.json()["usage"]["completion_tokens"] == billed, route

"""Every OpenAI-compatible route and every error, in process, on the scripted engine."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter

from llm_server.openai.protocol import ChatCompletionChunk, Completion, GenerateChunk
from llm_server.openapi import ErrorEnvelope, inline_schema
from tests.conftest import AUTH
from tests.fakes import FakeEngine

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def sse_events(response: httpx.Response) -> list[Any]:
    events = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            payload = block.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_models_lists_the_loaded_model(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/models", headers=AUTH)).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake-model"]


async def test_models_say_whether_the_model_is_a_base_model(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    """A GGUF without a chat template is a base model (it continues text)."""
    [card] = (await client.get("/v1/models", headers=AUTH)).json()["data"]
    assert card["kind"] == "base"
    engine.chat_template = True
    [card] = (await client.get("/v1/models", headers=AUTH)).json()["data"]
    assert card["kind"] == "chat"
    engine.chat_template = None  # not loaded yet
    [card] = (await client.get("/v1/models", headers=AUTH)).json()["data"]
    assert card["kind"] is None


async def test_chat_completion(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", headers=AUTH, json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "fake-model"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there, friend."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5


async def test_chat_stream_ends_with_done_and_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=AUTH,
        json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[1:-2])
    assert text == "Hello there, friend."
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["completion_tokens"] == 5


async def test_stop_strings_end_the_answer(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/v1/chat/completions", headers=AUTH, json={**CHAT, "stop": [","]})
    ).json()
    assert body["choices"][0]["message"]["content"] == "Hello there"
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_max_tokens_gives_length(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/v1/chat/completions", headers=AUTH, json={**CHAT, "max_tokens": 2})
    ).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


async def test_logprobs_are_returned(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/chat/completions", headers=AUTH, json={**CHAT, "logprobs": True, "top_logprobs": 1}
        )
    ).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert content[0]["token"] == "Hello"
    assert content[0]["logprob"] == -0.5
    assert len(content[0]["top_logprobs"]) == 1


async def test_n_choices(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat/completions", headers=AUTH, json={**CHAT, "n": 2})).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]


async def test_completion_and_stream(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/completions", headers=AUTH, json={"prompt": "Say", "max_tokens": 3, "logprobs": 1}
        )
    ).json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Hello there,"
    assert body["choices"][0]["logprobs"]["text_offset"] == [0, 5, 11]
    response = await client.post(
        "/v1/completions", headers=AUTH, json={"prompt": "Say", "max_tokens": 3, "stream": True}
    )
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "Hello there,"


async def test_generate_simple_form(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/generate", headers=AUTH, json={"prompt": "Say", "max_tokens": 2})
    ).json()
    assert body == {
        "text": "Hello there",
        "finish_reason": "length",
        "usage": {
            "prompt_tokens": 2,
            "completion_tokens": 2,
            "total_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    response = await client.post(
        "/generate", headers=AUTH, json={"prompt": "Say", "max_tokens": 2, "stream": True}
    )
    events = sse_events(response)
    assert events[-2]["finish_reason"] == "length"
    assert events[-1] == "[DONE]"


async def test_an_error_after_the_stream_started_is_in_band(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.fail_after = 2
    response = await client.post(
        "/v1/chat/completions", headers=AUTH, json={**CHAT, "stream": True}
    )
    assert response.status_code == 200
    events = sse_events(response)
    assert "[DONE]" not in events
    assert events[-1]["error"]["message"] == "engine broke"
    assert events[-1]["error"]["type"] == "service_unavailable"


async def test_a_full_queue_is_429_with_retry_after(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.queue_full = True
    for stream in (False, True):
        response = await client.post(
            "/v1/chat/completions", headers=AUTH, json={**CHAT, "stream": stream}
        )
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "queue_full"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({**CHAT, "model": "gpt-4"}, 404, "model"),
        ({**CHAT, "surprise": 1}, 422, "surprise"),
        ({**CHAT, "temperature": 2.5}, 422, "temperature"),
        ({**CHAT, "max_tokens": 0}, 422, "max_tokens"),
        ({**CHAT, "max_tokens": 10_000}, 422, "max_tokens"),
        ({**CHAT, "n": 99}, 422, "n"),
        ({**CHAT, "stop": ""}, 422, "stop"),
        ({"messages": []}, 422, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 422, "messages.0.role"),
        ({**CHAT, "max_tokens": 62}, 400, "max_tokens"),
    ],
)
async def test_bad_requests_get_the_envelope(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, param: str
) -> None:
    response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param


async def test_nan_is_refused(client: httpx.AsyncClient) -> None:
    raw = json.dumps(CHAT)[:-1] + ', "temperature": NaN}'
    response = await client.post(
        "/v1/chat/completions", headers={**AUTH, "content-type": "application/json"}, content=raw
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "temperature"


async def test_invalid_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers={**AUTH, "content-type": "application/json"},
        content=b"{nope",
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]["message"]


async def test_no_field_reads_a_file_or_a_url(client: httpx.AsyncClient) -> None:
    for field in ({"model": "/etc/passwd"}, {"model": "http://example.com/x.gguf"}):
        response = await client.post("/v1/chat/completions", headers=AUTH, json={**CHAT, **field})
        assert response.status_code == 404
    response = await client.post(
        "/v1/chat/completions", headers=AUTH, json={**CHAT, "grammar_file": "/etc/passwd"}
    )
    assert response.status_code == 422


async def test_requests_wait_503_while_draining(client: httpx.AsyncClient) -> None:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    transport.app.state.lifecycle.begin_drain()  # type: ignore[attr-defined]
    response = await client.post("/v1/chat/completions", headers=AUTH, json=CHAT)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert (await client.get("/health/ready")).status_code == 503


async def test_openapi_declares_streams_and_errors(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json", headers=AUTH)).json()
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert {"400", "401", "404", "413", "422", "429", "503"} <= set(chat["responses"])
    for path in ("/v1/completions", "/v1/models", "/generate", "/analyze", "/metrics"):
        assert path in document["paths"]


@pytest.mark.parametrize(
    ("route", "body", "chunk"),
    [
        ("/v1/chat/completions", {**CHAT, "logprobs": True}, ChatCompletionChunk),
        ("/v1/completions", {"prompt": "a", "logprobs": 1}, Completion),
        ("/generate", {"prompt": "a"}, GenerateChunk),
    ],
)
async def test_each_sse_event_is_declared(
    client: httpx.AsyncClient,
    engine: FakeEngine,
    route: str,
    body: dict[str, Any],
    chunk: type[BaseModel],
) -> None:
    """OpenAPI 3.1 tools (schemathesis' ST108) read a text/event-stream `schema` as one event,
    `{"data": …}`: it was declared as a plain string, which no event is. The `data` of every
    event of a real stream, a failed one too, is `[DONE]` or JSON that the declared schema
    holds (its `contentSchema`, a chunk or the error envelope)."""
    document = (await client.get("/openapi.json", headers=AUTH)).json()
    declared = document["paths"][route]["post"]["responses"]["200"]["content"]
    event = declared["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert event["required"] == ["data"]
    data = event["properties"]["data"]
    assert data["if"] == {"const": "[DONE]"}
    assert data["else"]["contentMediaType"] == "application/json"
    models: tuple[type[BaseModel], ...] = (chunk, ErrorEnvelope)
    for declared_payload, model in zip(data["else"]["contentSchema"]["anyOf"], models, strict=True):
        expected = inline_schema(model)  # FastAPI's copy drops `default: null` and the like
        for key in ("title", "type", "required"):
            assert declared_payload.get(key) == expected.get(key), key
        assert declared_payload["properties"].keys() == expected["properties"].keys()
    assert "$ref" not in json.dumps(data)  # a `#/$defs` reference would not resolve here
    events: TypeAdapter[Any] = TypeAdapter(chunk | ErrorEnvelope)  # type: ignore[arg-type]
    done = await client.post(route, headers=AUTH, json={**body, "stream": True})
    engine.fail_after = 1
    failed = await client.post(route, headers=AUTH, json={**body, "stream": True})
    for response in (done, failed):
        for payload in sse_events(response):
            if payload != "[DONE]":
                events.validate_python(payload, strict=True)
    assert sse_events(done)[-1] == "[DONE]"
    assert "error" in sse_events(failed)[-1]


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "array", "items": {"type": "integer"}, "minItems": 200_000_000}, "minItems"),
        ({"type": "string", "maxLength": 10**9}, "maxLength"),
        ({"type": "string", "pattern": "(a{4000}){4000}"}, "pattern"),
        ({"enum": []}, "empty"),
        ({"anyOf": []}, "empty"),
        ({"type": []}, "empty"),
        ({"$ref": "#/$defs/missing"}, "cannot be used"),
    ],
)
async def test_schema_bombs_and_unsatisfiable_schemas_are_400(
    client: httpx.AsyncClient, engine: FakeEngine, schema: dict[str, Any], says: str
) -> None:
    for stream in (False, True):
        response = await client.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={**CHAT, "stream": stream, "response_format": json_schema_format(schema)},
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_json_schema"
        assert error["param"] == "response_format.json_schema.schema"
        assert says in error["message"]
    assert engine.started == []


async def test_raw_grammars_are_not_accepted(client: httpx.AsyncClient) -> None:
    for field in ("grammar", "guided_grammar", "json_schema"):
        body = {**CHAT, field: 'root ::= "a"{100000000}'}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 422
        assert response.json()["error"]["param"] == field


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "max_tokens": "8"}),
        ("/v1/chat/completions", {**CHAT, "max_completion_tokens": "8"}),
        ("/v1/chat/completions", {**CHAT, "n": "2"}),
        ("/v1/chat/completions", {**CHAT, "stream": "true"}),
        ("/v1/completions", {"prompt": "a", "max_tokens": "8"}),
        ("/v1/completions", {"prompt": "a", "max_tokens": 8.0}),
        ("/generate", {"prompt": "a", "max_tokens": "8"}),
    ],
)
async def test_numbers_in_strings_are_refused_not_converted(
    client: httpx.AsyncClient, engine: FakeEngine, route: str, body: dict[str, Any]
) -> None:
    response = await client.post(route, headers=AUTH, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] in ("max_tokens", "max_completion_tokens", "n", "stream")
    assert "valid" in error["message"]
    assert engine.started == []


async def test_an_overflowing_prompt_is_refused_before_any_stream(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    for route, body in (
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "w " * 80}]}),
        ("/v1/completions", {"prompt": "w " * 80}),
        ("/generate", {"prompt": "w " * 80}),
    ):
        response = await client.post(route, headers=AUTH, json={**body, "stream": True})
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        assert re.search(r"the prompt has \d+ tokens", error["message"])
        assert "context is 64 tokens" in error["message"]
    assert engine.started == []


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"prompt": "Say it", "max_tokens": 3}),
        ("/generate", {"prompt": "Say it", "max_tokens": 3}),
    ],
)
async def test_the_prompt_token_count_is_a_header_before_the_body(
    client: httpx.AsyncClient, engine: FakeEngine, route: str, body: dict[str, Any]
) -> None:
    response = await client.post(route, headers=AUTH, json=body)
    usage = response.json()["usage"]
    assert response.headers["x-prompt-tokens"] == str(usage["prompt_tokens"])
    engine.token_delay = 0.05
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    if route == "/generate":
        del stream["stream_options"]
    async with client.stream("POST", route, headers=AUTH, json=stream) as streamed:
        # Read before any event: a client that cancels now still knows the prompt's size.
        assert streamed.headers["x-prompt-tokens"] == str(usage["prompt_tokens"])
    document = (await client.get("/openapi.json", headers=AUTH)).json()
    declared = document["paths"][route]["post"]["responses"]["200"]["headers"]
    assert "x-prompt-tokens" in declared


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "stop": "x" * 1001}),
        ("/v1/completions", {"prompt": "a", "stop": ["ok", "x" * 1001]}),
        ("/generate", {"prompt": "a", "stop": ["x" * 1001]}),
    ],
)
async def test_a_stop_string_over_the_cap_is_refused(
    client: httpx.AsyncClient, route: str, body: dict[str, Any]
) -> None:
    """Stops are matched per token in the decoding thread, in time quadratic in their length:
    a 250 kB stop string could stall every stream."""
    response = await client.post(route, headers=AUTH, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "stop"
    assert "at most 1000 characters" in error["message"]

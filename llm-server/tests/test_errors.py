"""Engine errors get their HTTP status and envelope in one place."""

from __future__ import annotations

import json

import pytest

from llm_server.engine.errors import (
    ChatTemplateError,
    EngineBusyError,
    EngineError,
    EngineUnavailableError,
    GenerationTimeoutError,
    GrammarError,
    InvalidTextError,
)
from llm_server.errors import SCHEMA_PARAM, LLMServerError, http_error, sse_error_event


@pytest.mark.parametrize(
    ("error", "status", "code", "param", "retry_after"),
    [
        (EngineBusyError("busy"), 429, "queue_full", None, 1),
        (EngineUnavailableError("gone"), 503, "unavailable", None, 1),
        (InvalidTextError("surrogate"), 400, "invalid_text", None, None),
        (ChatTemplateError("roles"), 400, None, "messages", None),
        (GrammarError("bad schema"), 400, "invalid_json_schema", SCHEMA_PARAM, None),
        (GenerationTimeoutError("late"), 504, "request_timeout", None, None),
        (EngineError("anything else"), 503, "unavailable", None, 1),
    ],
)
def test_each_engine_error_has_its_status(
    error: EngineError, status: int, code: str | None, param: str | None, retry_after: int | None
) -> None:
    mapped = http_error(error)
    assert (mapped.status_code, mapped.code, mapped.param) == (status, code, param)
    assert mapped.retry_after == retry_after
    assert mapped.message == str(error)


def test_a_service_error_is_its_own_mapping() -> None:
    error = LLMServerError("x", code="c")
    assert http_error(error) is error


def test_an_engine_error_after_the_stream_started_is_an_in_band_envelope() -> None:
    event = sse_error_event(EngineBusyError("busy"))
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert json.loads(event[len(b"data: ") :])["error"]["code"] == "queue_full"

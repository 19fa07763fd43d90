"""OpenAPI declarations shared by routes: the error envelope and server-sent event streams."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    """Every error of this service, and the in-band SSE event that ends a failed stream."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid request, e.g. prompt + max_tokens exceed the context window"),
    401: _error("Missing or wrong service token"),
    404: _error("Unknown model"),
    413: _error("Body over the size limit"),
    422: _error("Schema error: unknown field, wrong type, NaN, out-of-range number"),
    429: _error("Queue full; retry after `Retry-After` seconds"),
    503: _error("Model loading or server draining; retry after `Retry-After` seconds"),
    504: _error("The request ran past the per-request timeout"),
}


def sse_response(chunk: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Declare that 200 may also be `text/event-stream`: `data: <chunk>` lines, then
    `data: [DONE]`, or an `ErrorEnvelope` event when the stream fails after it started."""
    return {
        200: {
            "headers": {
                "x-prompt-tokens": {
                    "description": "The prompt's exact token count, sent before the body.",
                    "schema": {"type": "integer"},
                }
            },
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": (
                            f"Server-sent events when `stream` is true: `data: <{chunk.__name__}"
                            " JSON>` per event, ending with `data: [DONE]`, or with "
                            "`data: <ErrorEnvelope JSON>` if generation fails mid-stream."
                        ),
                    }
                }
            },
        }
    }

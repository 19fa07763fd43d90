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
    503: _error(
        "Server or model loading, server draining, or no memory for the model; retry after "
        "`Retry-After` seconds"
    ),
    504: _error("The request ran past the per-request timeout"),
}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema (as serialized) with its `$defs` written in place: a `#/$defs/…`
    reference would resolve against the whole OpenAPI document, not this schema."""
    schema = model.model_json_schema(mode="serialization")
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: resolve(v) for k, v in node.items() if k != "$ref"}
                return {**resolve(defs[ref.removeprefix("#/$defs/")]), **rest}
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def sse_event_schema(chunk: type[BaseModel]) -> dict[str, Any]:
    """One server-sent event as OpenAPI 3.1 tools read a `text/event-stream` schema (an object
    with the event's `data` string): `[DONE]`, or JSON holding a `chunk` or, when generation
    fails after the stream started, an `ErrorEnvelope`."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "if": {"const": "[DONE]"},
                "else": {
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "anyOf": [inline_schema(chunk), inline_schema(ErrorEnvelope)]
                    },
                },
            },
            "event": {"type": "string", "const": "message"},
        },
        "description": (
            f"Server-sent events when `stream` is true: `data: <{chunk.__name__} JSON>` per "
            "event, ending with `data: [DONE]`, or with `data: <ErrorEnvelope JSON>` (and no "
            "`[DONE]`) if generation fails mid-stream."
        ),
    }


def sse_response(chunk: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """Declare that 200 may also be `text/event-stream`, each event described by
    `sse_event_schema` (OpenAPI 3.1: a stream's `schema` is one event's)."""
    return {
        200: {
            "headers": {
                "x-prompt-tokens": {
                    "description": "The prompt's exact token count, sent before the body.",
                    "schema": {"type": "integer"},
                }
            },
            "content": {"text/event-stream": {"schema": sse_event_schema(chunk)}},
        }
    }

"""The one error envelope of llm-server: OpenAI's `{"error": {message, type, param, code}}`.

The HTTP layer raises `LLMServerError` subclasses; the engine raises `EngineError`s, which
know nothing of HTTP and get their status here (`http_error`). Both are mapped to JSON in one
place (`install_error_handlers`); after a stream has started, the same body goes out as an
in-band SSE event (`sse_error_event`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_server.engine.errors import (
    ChatTemplateError,
    EngineBusyError,
    EngineError,
    GenerationTimeoutError,
    GrammarError,
    InvalidTextError,
)

logger = logging.getLogger("llm_server.errors")


class LLMServerError(Exception):
    """Base of every error this service reports to its client."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of this error, in the OpenAI envelope."""
        return error_body(self.message, self.error_type, self.param, self.code)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class AuthenticationError(LLMServerError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_service_token"


class InvalidRequestError(LLMServerError):
    status_code = 400
    error_type = "invalid_request_error"


class UnprocessableError(LLMServerError):
    """A value is out of the range this server accepts (its configured caps)."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "invalid_value"


class ContextLengthExceededError(InvalidRequestError):
    code = "context_length_exceeded"


class ModelNotFoundError(LLMServerError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLargeError(LLMServerError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class QueueFullError(LLMServerError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "queue_full"


class UnavailableError(LLMServerError):
    status_code = 503
    error_type = "service_unavailable"
    code = "unavailable"


class RequestTimeoutError(LLMServerError):
    status_code = 504
    error_type = "timeout_error"
    code = "request_timeout"


# Where a schema's grammar comes from in a request: named by every grammar error.
SCHEMA_PARAM = "response_format.json_schema.schema"


def http_error(exc: LLMServerError | EngineError) -> LLMServerError:
    """The HTTP error an exception is reported as: an engine error gets its status here."""
    if isinstance(exc, LLMServerError):
        return exc
    message = str(exc)
    if isinstance(exc, EngineBusyError):
        return QueueFullError(message, retry_after=1)
    if isinstance(exc, InvalidTextError):
        return InvalidRequestError(message, code="invalid_text")
    if isinstance(exc, ChatTemplateError):
        return InvalidRequestError(message, param="messages")
    if isinstance(exc, GrammarError):
        return InvalidRequestError(message, param=SCHEMA_PARAM, code="invalid_json_schema")
    if isinstance(exc, GenerationTimeoutError):
        return RequestTimeoutError(message)
    return UnavailableError(message, retry_after=1)


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def sse_error_event(exc: LLMServerError | EngineError) -> bytes:
    """The in-band SSE event that ends a stream which failed after it started."""
    return f"data: {json.dumps(http_error(exc).body())}\n\n".encode()


def _describe_validation_error(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(location) or None
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "json_invalid":
        message = "the body is not valid JSON"
        param = None
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception this service can raise to the one error envelope."""

    async def on_service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LLMServerError | EngineError)
        error = http_error(exc)
        return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers())

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _describe_validation_error(exc)
        body = error_body(message, "invalid_request_error", param, "invalid_value")
        return JSONResponse(body, status_code=422)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        body = error_body(
            str(exc.detail), "invalid_request_error", None, codes.get(exc.status_code)
        )
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        body = error_body("internal error", "server_error", None, "internal_error")
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(LLMServerError, on_service_error)
    app.add_exception_handler(EngineError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)

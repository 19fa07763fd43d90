"""ASGI middleware guarding the service: the gateway's token on every route, a body size cap."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_server.errors import AuthenticationError, LLMServerError, PayloadTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Exempt only these exact raw paths. Any other spelling (`//health/live`, `%2e`, a trailing
# slash) must authenticate, so no path normalisation can open a hole.
PUBLIC_PATHS = frozenset({"/health/live", "/health/ready"})


async def send_error(send: Send, exc: LLMServerError) -> None:
    body = json.dumps(exc.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers().items()]
    if isinstance(exc, AuthenticationError):
        headers.append((b"www-authenticate", b'Bearer realm="llm-server"'))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServiceTokenMiddleware:
    """Refuses every request but the health probes unless it carries the service token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("raw_path", b"") in _PUBLIC_RAW:
            await self.app(scope, receive, send)
            return
        supplied = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                supplied = value
                break
        if not hmac.compare_digest(supplied, self._expected):
            await send_error(send, AuthenticationError("missing or invalid service token"))
            return
        await self.app(scope, receive, send)


_PUBLIC_RAW = frozenset(p.encode() for p in PUBLIC_PATHS)


class BodySizeLimitMiddleware:
    """Answers 413 before reading a body larger than the limit, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLargeError(f"the request body exceeds {self.max_bytes} bytes")
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await send_error(send, too_large)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException survives FastAPI's body parsing and reaches the
                    # one error handler as a 413 in the envelope.
                    raise StarletteHTTPException(413, too_large.message)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except StarletteHTTPException as exc:
            if exc.status_code != 413 or response_started:
                raise
            await send_error(send, too_large)

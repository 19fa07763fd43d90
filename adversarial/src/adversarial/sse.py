"""Streamed completions read the way a client reads them, counting what was delivered.

Tokens are counted on the client side from `logprobs` (one entry per generated token, whatever
text the token decodes to), so a usage row can be checked against what the client really got.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class StreamResult:
    """One streamed request as the client saw it."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: str = ""  # the whole body of a non-stream (error) answer
    tokens: int = 0  # generated tokens delivered (logprobs entries)
    chunks: int = 0
    done: bool = False  # saw `data: [DONE]`
    error: dict[str, Any] | None = None  # an in-band error event
    usage: dict[str, Any] | None = None  # the usage chunk, when asked for
    transport_error: str | None = None  # the connection broke (no in-band word at all)
    text: str = ""
    abandoned: bool = False  # the client hung up on purpose
    ended: bool = False  # reading is over, whatever the reason

    @property
    def complete(self) -> bool:
        """Ended properly: [DONE] and no error."""
        return self.status == 200 and self.done and self.error is None


class SseParser:
    """Incremental `text/event-stream` parser: feed text, get `data:` payloads back."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, text: str) -> list[str]:
        self._buf += text.replace("\r\n", "\n")
        out: list[str] = []
        while (end := self._buf.find("\n\n")) >= 0:
            event, self._buf = self._buf[:end], self._buf[end + 2 :]
            data = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
            if data:
                out.append("\n".join(data))
        return out


def apply_event(result: StreamResult, data: str) -> None:
    """Fold one OpenAI-style `data:` payload into `result`."""
    if data == "[DONE]":
        result.done = True
        return
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        result.error = {"message": f"unparseable event: {data[:200]}"}
        return
    if not isinstance(payload, dict):
        return
    if "error" in payload:
        result.error = payload["error"] if isinstance(payload["error"], dict) else payload
        return
    result.chunks += 1
    if isinstance(payload.get("usage"), dict):
        result.usage = payload["usage"]
    for choice in payload.get("choices") or []:
        delta = choice.get("delta") or {}
        result.text += delta.get("content") or choice.get("text") or ""
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            if isinstance(logprobs.get("content"), list):  # chat
                result.tokens += len(logprobs["content"])
            elif isinstance(logprobs.get("tokens"), list):  # completions
                result.tokens += len(logprobs["tokens"])


def chat_body(max_tokens: int, prompt: str = "Once upon a time", **extra: Any) -> dict[str, Any]:
    """A streamed chat request whose delivered tokens can be counted (logprobs on), sampled
    (temperature 1: never a cache hit)."""
    return {
        "model": "default",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 1.0,
        "stream": True,
        "logprobs": True,
        **extra,
    }


async def stream(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    on_chunk: Callable[[StreamResult], None] | None = None,
    stop_after: int | None = None,
) -> StreamResult:
    """POST `body` and read the answer to its end (or the connection's); with `stop_after`,
    hang up once that many tokens arrived (the connection is closed, not reused)."""
    result = StreamResult()
    try:
        async with client.stream("POST", url, headers=headers, json=body) as response:
            result.status = response.status_code
            result.headers = dict(response.headers)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                result.body = (await response.aread()).decode(errors="replace")
                return result
            parser = SseParser()
            async for text in response.aiter_text():
                for data in parser.feed(text):
                    apply_event(result, data)
                    if on_chunk is not None:
                        on_chunk(result)
                if stop_after is not None and result.tokens >= stop_after:
                    result.abandoned = True
                    break
    except (TimeoutError, httpx.HTTPError) as error:
        result.transport_error = f"{type(error).__name__}: {error}"
    return result


def stream_sync(url: str, headers: dict[str, str], body: dict[str, Any]) -> StreamResult:
    """`stream` for one request from synchronous code."""

    async def one() -> StreamResult:
        async with httpx.AsyncClient(timeout=120) as client:
            return await stream(client, url, headers, body)

    return asyncio.run(one())


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}

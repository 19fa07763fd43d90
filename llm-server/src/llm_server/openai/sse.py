"""Server-sent events, with a fast path for the chunk every generated token produces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from llm_server.engine.errors import EngineError
from llm_server.errors import LLMServerError, sse_error_event

# Private-use characters: never produced by the JSON around the text.
TEXT_SENTINEL = "\ue000text\ue000"


class TokenChunks:
    """Encodes per-token chunks from a template pydantic renders once per choice: only the text
    changes from one token to the next, so the hot path is one `json.dumps` of that text."""

    def __init__(self, render: Callable[[int, str], BaseModel]) -> None:
        self._render = render
        self._parts: dict[int, tuple[bytes, bytes]] = {}

    def encode(self, index: int, text: str) -> bytes:
        parts = self._parts.get(index)
        if parts is None:
            rendered = self._render(index, TEXT_SENTINEL).model_dump_json()
            before, after = rendered.split(json.dumps(TEXT_SENTINEL, ensure_ascii=False), 1)
            parts = self._parts[index] = (before.encode(), after.encode())
        return parts[0] + json.dumps(text, ensure_ascii=False).encode() + parts[1]


def sse(
    events: AsyncIterator[BaseModel | bytes], headers: dict[str, str] | None = None
) -> StreamingResponse:
    """`data:` events (models, or JSON already encoded), then `[DONE]` — or an error event and
    no `[DONE]` when generation fails after the stream started."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                payload = event if isinstance(event, bytes) else event.model_dump_json().encode()
                yield b"data: " + payload + b"\n\n"
        except (LLMServerError, EngineError) as exc:
            yield sse_error_event(exc)
            return
        yield b"data: [DONE]\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

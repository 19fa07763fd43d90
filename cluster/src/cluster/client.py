"""The load client's side: requests to the gateways, streamed answers read event by event."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Answer:
    """What one request got: status, SSE events (streams), the x-cache header, timings."""

    status: int
    gateway: str
    events: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None
    transport_error: str | None = None

    @property
    def done(self) -> bool:
        """The stream ended with `[DONE]`."""
        return bool(self.events) and self.events[-1] == "[DONE]"

    @property
    def in_band_error(self) -> bool:
        """A `data: {"error": …}` event came (a stream cut after its headers)."""
        return any(e.startswith('{"error"') for e in self.events)

    @property
    def code(self) -> str:
        """The error code of a refusal ("" for none)."""
        error = self.body.get("error")
        return str(error.get("code", "")) if isinstance(error, dict) else ""

    @property
    def text(self) -> str:
        """The answer's text (JSON or streamed)."""
        if self.body.get("choices"):
            choice = self.body["choices"][0]
            return str(choice.get("message", {}).get("content") or choice.get("text") or "")
        parts = []
        for event in self.events:
            if event.startswith("{") and '"choices"' in event:
                for c in json.loads(event).get("choices", []):
                    parts.append(c.get("delta", {}).get("content") or c.get("text") or "")
        return "".join(parts)


def body(prompt: str, max_tokens: int, *, stream: bool = False, **extra: object) -> dict[str, Any]:
    """A chat completion request body."""
    return {
        "model": "default",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


async def complete(
    http: httpx.AsyncClient,
    gateway: str,
    key: str,
    payload: dict[str, Any],
    started: asyncio.Event | None = None,
    first_events: int = 3,
) -> Answer:
    """POST /v1/chat/completions; a stream is read to its end. `started` is set once a stream
    has given `first_events` events (it is under way on its server)."""
    headers = {"authorization": f"Bearer {key}"}
    url = f"{gateway}/v1/chat/completions"
    try:
        async with http.stream("POST", url, json=payload, headers=headers) as res:
            answer = Answer(res.status_code, gateway, cache=res.headers.get("x-cache"))
            if res.headers.get("content-type", "").startswith("text/event-stream"):
                async for line in res.aiter_lines():
                    if line.startswith("data: "):
                        answer.events.append(line[6:])
                        if started is not None and len(answer.events) == first_events:
                            started.set()
            else:
                raw = await res.aread()
                try:
                    answer.body = json.loads(raw)
                except ValueError:
                    answer.body = {"raw": raw.decode(errors="replace")}
    except httpx.HTTPError as exc:
        answer = Answer(0, gateway, transport_error=f"{type(exc).__name__}: {exc}")
    if started is not None:
        started.set()  # whatever happened, nobody waits for it any longer
    return answer

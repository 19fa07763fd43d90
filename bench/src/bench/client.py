"""One streamed request (any shape of `bench.shapes`), timed event by event."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field

import httpx

from bench.shapes import SHAPES, Shape, StreamState, read_event, request_body
from bench.targets import RunningTarget


@dataclass
class RequestRecord:
    """Times are `time.perf_counter()` seconds."""

    started: float
    prompt_length: int
    max_tokens: int
    events: list[float] = field(default_factory=list)  # arrival of each content event
    finished: float = 0.0
    state: StreamState = field(default_factory=StreamState)
    token_problem: str | None = None  # set by bench.checks

    @property
    def error(self) -> str | None:
        return self.state.error

    @error.setter
    def error(self, value: str | None) -> None:
        self.state.error = value

    @property
    def finish_reason(self) -> str | None:
        return self.state.finish_reason

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.events)

    @property
    def ttft(self) -> float:
        return self.events[0] - self.started

    @property
    def e2e(self) -> float:
        return self.finished - self.started

    @property
    def output_tokens(self) -> int:
        """The server's own count (`usage`, checked against the text by `bench.checks`);
        without one, max_tokens for a "length" finish, else the content events."""
        if self.state.completion_tokens is not None:
            return self.state.completion_tokens
        return self.max_tokens if self.finish_reason == "length" else len(self.events)

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.events)]


def new_http(connections: int) -> httpx.AsyncClient:
    # A fresh connection per request, for every target alike: llama-server closes the
    # connection of a streamed response, and a reused one then fails.
    limits = httpx.Limits(max_connections=connections + 4, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=httpx.Timeout(900, connect=30), limits=limits)


async def stream_completion(
    http: httpx.AsyncClient,
    target: RunningTarget,
    prompt: str | list[dict[str, str]],
    prompt_length: int,
    max_tokens: int,
    seed: int,
    client_id: str = "bench",
    record: RequestRecord | None = None,
    shape: Shape = SHAPES["completions"],
) -> RequestRecord:
    """Fills `record` (a new one unless given, so a caller can watch it progress)."""
    body = request_body(shape, prompt, max_tokens, seed, target.extra_body)
    headers = {"x-client-id": client_id}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    record = record or RequestRecord(0.0, prompt_length, max_tokens)
    record.started = time.perf_counter()
    try:
        async with http.stream("POST", target.url + shape.path, json=body, headers=headers) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")[:200]
                record.error = f"HTTP {r.status_code}: {text}"
                return record
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                if read_event(record.state, json.loads(line[6:])):
                    record.events.append(time.perf_counter())
                if record.error:
                    break
    except (httpx.HTTPError, json.JSONDecodeError) as error:
        record.error = f"{type(error).__name__}: {error}"[:200]
    finally:
        record.finished = time.perf_counter()
    return record

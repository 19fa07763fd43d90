"""One streamed `/v1/completions` request, timed event by event."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.targets import RunningTarget


@dataclass
class RequestRecord:
    """Times are `time.perf_counter()` seconds."""

    started: float
    prompt_length: int
    max_tokens: int
    events: list[float] = field(default_factory=list)  # arrival of each content event
    finished: float = 0.0
    finish_reason: str | None = None
    error: str | None = None

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
        # With end-of-sequence ignored every target stops at max_tokens ("length"); a server
        # that sends several tokens in one event is still counted right.
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
    prompt: str,
    prompt_length: int,
    max_tokens: int,
    seed: int,
    client_id: str = "bench",
    record: RequestRecord | None = None,
) -> RequestRecord:
    """Fills `record` (a new one unless given, so a caller can watch it progress)."""
    body: dict[str, Any] = {
        "model": "default",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "temperature": 0.8,
        "top_k": 40,
        "top_p": 0.95,
        "seed": seed,
        **target.extra_body,
    }
    headers = {"x-client-id": client_id}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    record = record or RequestRecord(0.0, prompt_length, max_tokens)
    record.started = time.perf_counter()
    try:
        async with http.stream(
            "POST", f"{target.url}/v1/completions", json=body, headers=headers
        ) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")[:200]
                record.error = f"HTTP {response.status_code}: {text}"
                return record
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    record.error = str(event["error"])[:200]
                    break
                for choice in event.get("choices") or []:
                    if choice.get("text"):
                        record.events.append(time.perf_counter())
                    if choice.get("finish_reason"):
                        record.finish_reason = choice["finish_reason"]
    except (httpx.HTTPError, json.JSONDecodeError) as error:
        record.error = f"{type(error).__name__}: {error}"[:200]
    finally:
        record.finished = time.perf_counter()
    return record

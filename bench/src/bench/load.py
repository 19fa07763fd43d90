"""A streaming load client: C concurrent clients, each sending R streamed completions."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx

PROMPTS = (
    "Once upon a time, in a small village by the sea,",
    "The history of the printing press begins",
    "Here is a recipe for a simple tomato soup:",
    "The three laws of motion state that",
)


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    tokens: int
    seconds: float
    ttft_ms: list[float]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds

    def ttft_percentile(self, q: float) -> float:
        ordered = sorted(self.ttft_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def ttft_p50(self) -> float:
        return statistics.median(self.ttft_ms)


async def _one(
    http: httpx.AsyncClient, url: str, token: str, prompt: str, seed: int, max_tokens: int
) -> tuple[int, float]:
    body = {
        "model": "default",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "temperature": 0.8,
        "top_k": 40,
        "seed": seed,
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    ttft = 0.0
    tokens = 0
    async with http.stream("POST", f"{url}/v1/completions", json=body, headers=headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(event["error"])
            if event["choices"] and event["choices"][0].get("text"):
                if not tokens:
                    ttft = (time.perf_counter() - started) * 1000
                tokens += 1
    return tokens, ttft


async def run_load(
    url: str, token: str, concurrency: int, per_client: int, max_tokens: int
) -> LoadResult:
    # A fresh connection per request, for both servers: llama-server closes streamed responses'
    # connections, and a reused one then fails.
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:

        async def client(index: int) -> list[tuple[int, float]]:
            return [
                await _one(
                    http,
                    url,
                    token,
                    PROMPTS[(index + r) % len(PROMPTS)],
                    1000 * index + r,
                    max_tokens,
                )
                for r in range(per_client)
            ]

        await _one(http, url, token, PROMPTS[0], 1, 4)  # warm-up, not counted
        started = time.perf_counter()
        results = await asyncio.gather(*(client(i) for i in range(concurrency)))
        seconds = time.perf_counter() - started
    flat = [item for per in results for item in per]
    return LoadResult(
        concurrency, len(flat), sum(t for t, _ in flat), seconds, [ttft for _, ttft in flat]
    )

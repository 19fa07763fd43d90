"""Delivered tokens against usage rows: the check behind "requests lost" and "double-billed"."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from adversarial.registry import Tally
from adversarial.sse import StreamResult, bearer, chat_body, stream
from adversarial.stack import Stack


@dataclass
class Ledger:
    """What one API key's client received, request by request."""

    key_id: str
    results: list[StreamResult] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(r.tokens for r in self.results)


def reconcile(
    stack: Stack, ledgers: list[Ledger], tally: Tally, *, timeout: float = 15.0
) -> list[str]:
    """Compare every key's usage rows with what its client got; count lost and double-billed
    requests into `tally`; the mismatches, described."""
    problems = []
    for ledger in ledgers:
        rows = stack.wait_usage(ledger.key_id, len(ledger.results), timeout)
        billed = sum(int(r["completion"]) for r in rows)
        if len(rows) < len(ledger.results):
            tally.requests_lost += len(ledger.results) - len(rows)
        if len(rows) > len(ledger.results):
            tally.double_billed += len(rows) - len(ledger.results)
        if billed != ledger.delivered or len(rows) != len(ledger.results):
            problems.append(
                f"key {ledger.key_id}: {len(ledger.results)} requests delivered "
                f"{ledger.delivered} tokens; {len(rows)} usage rows bill {billed}"
            )
    return problems


async def run_streams(
    url: str,
    jobs: list[tuple[str, dict[str, Any]]],
    *,
    concurrency: int,
    timeout: float = 300.0,
) -> list[StreamResult]:
    """Stream every (token, body) of `jobs`, `concurrency` at a time; results in job order."""
    results: list[StreamResult | None] = [None] * len(jobs)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(index: int, token: str, body: dict[str, Any]) -> None:
            async with gate:
                results[index] = await stream(client, url, bearer(token), body)

        await asyncio.gather(*(one(i, t, b) for i, (t, b) in enumerate(jobs)))
    return [r for r in results if r is not None]


def random_bodies(count: int, low: int, high: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    prompts = ["Once upon a time", "The river", "In 1887 the", "def main():", "Dear diary,"]
    return [chat_body(rng.randint(low, high), rng.choice(prompts)) for _ in range(count)]

"""Load modes against any OpenAI-compatible endpoint: closed loop, Poisson arrivals, and a long
prompt arriving while streams decode."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.client import RequestRecord, new_http, stream_completion
from bench.prompts import PromptPool
from bench.shapes import Shape
from bench.targets import RunningTarget


async def warm_up(target: RunningTarget, pool: PromptPool, length: int, shape: Shape) -> None:
    async with new_http(1) as http:
        record = await stream_completion(
            http, target, pool.prompt(length), length, 4, 1, shape=shape
        )
    if record.error:
        raise RuntimeError(f"{target.name}: warm-up failed: {record.error}")


async def closed_loop(
    target: RunningTarget,
    pool: PromptPool,
    concurrency: int,
    prompt_length: int,
    max_tokens: int,
    duration: float,
    min_requests: int,
    shape: Shape,
) -> list[RequestRecord]:
    """`concurrency` clients, each sending its next request as soon as the last one ends, until
    `duration` seconds have passed and it has sent at least `min_requests`."""
    deadline = time.perf_counter() + duration
    async with new_http(concurrency) as http:

        async def client(index: int) -> list[RequestRecord]:
            records: list[RequestRecord] = []
            while len(records) < min_requests or time.perf_counter() < deadline:
                seed = 1000 * index + len(records)
                records.append(
                    await stream_completion(
                        http,
                        target,
                        pool.prompt(prompt_length),
                        prompt_length,
                        max_tokens,
                        seed,
                        f"client-{index}",
                        shape=shape,
                    )
                )
            return records

        per_client = await asyncio.gather(*(client(i) for i in range(concurrency)))
    return [r for records in per_client for r in records]


async def poisson(
    target: RunningTarget,
    pool: PromptPool,
    rate: float,
    prompt_length: int,
    max_tokens: int,
    duration: float,
    shape: Shape,
    seed: int = 0,
) -> list[RequestRecord]:
    """Open loop: requests arrive at exponential intervals (mean 1/rate) for `duration`
    seconds, whatever the server's backlog; every one is awaited."""
    rng = random.Random(seed)  # noqa: S311  # arrival times, not secrets
    tasks: list[asyncio.Task[RequestRecord]] = []
    async with new_http(max(8, int(rate * duration))) as http:
        start = time.perf_counter()
        at = rng.expovariate(rate)
        while at < duration:
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            index = len(tasks)
            tasks.append(
                asyncio.create_task(
                    stream_completion(
                        http,
                        target,
                        pool.prompt(prompt_length),
                        prompt_length,
                        max_tokens,
                        index,
                        f"client-{index % 64}",
                        shape=shape,
                    )
                )
            )
            at += rng.expovariate(rate)
        return list(await asyncio.gather(*tasks))


@dataclass
class Interference:
    streams: list[RequestRecord]
    long: RequestRecord
    arrival: float  # when the long prompt was sent (perf_counter)


async def interference(
    target: RunningTarget,
    pool: PromptPool,
    streams: int,
    stream_prompt: int,
    stream_tokens: int,
    long_prompt: int,
    shape: Shape,
) -> Interference:
    """`streams` requests decode; once every one has streamed 8 tokens, one `long_prompt`-token
    prompt arrives (on a serial server the streams never all run: after 15 s it is sent
    anyway)."""
    records = [RequestRecord(0.0, stream_prompt, stream_tokens) for _ in range(streams)]
    async with new_http(streams + 1) as http:
        tasks = [
            asyncio.create_task(
                stream_completion(
                    http,
                    target,
                    pool.prompt(stream_prompt),
                    stream_prompt,
                    stream_tokens,
                    i,
                    f"stream-{i}",
                    record,
                    shape,
                )
            )
            for i, record in enumerate(records)
        ]
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(len(r.events) < 8 for r in records):
            await asyncio.sleep(0.02)
        arrival = time.perf_counter()
        long = await stream_completion(
            http,
            target,
            pool.prompt(long_prompt),
            long_prompt,
            16,
            99,
            "long-prompt",
            shape=shape,
        )
        await asyncio.gather(*tasks)
    return Interference(records, long, arrival)

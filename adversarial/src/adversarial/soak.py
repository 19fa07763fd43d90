"""`make soak`: many concurrent SSE streams through the gateway for a long time, from a mix of
users, API keys and session tokens. Passes when no request failed, the gateway's and
llm-server's file descriptors came back to their idle count, their memory grew less than the
stated bound, and every usage row matches the tokens its client received."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field

import httpx

from adversarial.procs import Proc
from adversarial.sse import StreamResult, bearer, chat_body, stream
from adversarial.stack import Stack, start_stack

USERS = 20
KEYS_PER_USER = 2
# Growth allowed between the idle sample after warm-up and the idle sample at the end.
FD_SLACK = 16
RSS_BOUND_MIB = {"gateway": 128, "llm-server": 256}
PROMPTS = ["Once upon a time", "The river", "In 1887 the", "def main():", "Dear diary,", "Hi"]


@dataclass
class Credential:
    """Who a stream runs as: an API key (billed to the key) or a session token (the user)."""

    token: str
    user_id: str
    key_id: str | None
    results: list[StreamResult] = field(default_factory=list)


def soak_stack(concurrency: int) -> Stack:
    """One llm-server (32 sequences at a time) and a gateway configured by the operator for
    `concurrency` streams: no per-user limits; the gateway sends each server twice what it
    runs (its default) and queues the rest, long enough for a shared, loaded machine."""
    return start_stack(
        llm_env={"LLM_MAX_RUNNING": "32", "LLM_MAX_TOKENS_LIMIT": "256"},
        gateway_env={
            **{f"LIMIT_USER_{n}": "0" for n in ("REQUESTS_PER_MINUTE", "TOKENS_PER_DAY",
                                                 "CONCURRENT_STREAMS")},
            "GATEWAY_QUEUE_MAX": str(concurrency * 2),
            "GATEWAY_QUEUE_TIMEOUT_MS": "600000",
            "LOG_LEVEL": "warn",
        },
    )  # fmt: skip


def credentials(stack: Stack) -> list[Credential]:
    out = []
    stack.account("admin", role="admin", key=False)
    for n in range(USERS):
        user = stack.account(f"soak-{n}")
        me = httpx.get(f"{stack.gw}/api/user", headers=bearer(user.session)).json()
        out.append(Credential(user.api_key, me["id"], user.api_key_id))
        for k in range(1, KEYS_PER_USER):
            key, key_id = stack.new_key(user, f"soak-{n}-{k}")
            out.append(Credential(key, me["id"], key_id))
        out.append(Credential(user.session, me["id"], None))
    return out


def sample(procs: dict[str, Proc]) -> dict[str, tuple[int, int]]:
    """(open fds, RSS KiB) of each process."""
    return {name: (p.fd_count(), p.rss_kb()) for name, p in procs.items()}


async def drive(
    url: str, creds: list[Credential], concurrency: int, until: float, max_tokens: int
) -> None:
    rng = random.Random(12)
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=30), limits=limits) as client:

        async def worker(n: int) -> None:
            while time.monotonic() < until:
                cred = creds[(n + rng.randrange(len(creds))) % len(creds)]
                body = chat_body(rng.randint(4, max_tokens), rng.choice(PROMPTS))
                cred.results.append(await stream(client, url, bearer(cred.token), body))

        await asyncio.gather(*(worker(n) for n in range(concurrency)))


def billed(stack: Stack, cred: Credential) -> tuple[int, int]:
    """(usage rows, completion tokens) recorded for one credential."""
    if cred.key_id is not None:
        where, param = "apiKeyId = ?", cred.key_id
    else:
        where, param = "userId = ? and apiKeyId is null", cred.user_id
    [(rows, tokens)] = stack.query(
        f"select count(*), coalesce(sum(completionTokens), 0) from usage_record where {where}",  # noqa: S608
        param,
    )
    return int(rows), int(tokens)


def soak(duration: float, concurrency: int, max_tokens: int) -> int:
    """Run the soak; print its figures; 0 when every check held."""
    print(f"soak: {concurrency} concurrent streams for {duration:.0f} s, max_tokens ≤ {max_tokens}")
    stack = soak_stack(concurrency)
    try:
        creds = credentials(stack)
        procs = {"gateway": stack.gateway, "llm-server": stack.llm[0]}
        url = f"{stack.gw}/v1/chat/completions"
        # Warm-up: one round at full concurrency opens the pools that stay open.
        asyncio.run(drive(url, creds, concurrency, time.monotonic() + 20, max_tokens))
        time.sleep(3)
        before = sample(procs)
        warm = sum(len(c.results) for c in creds)
        print(f"soak: warm-up done ({warm} requests); idle fds/RSS: {before}", flush=True)
        samples: list[dict[str, tuple[int, int]]] = []
        started = time.monotonic()
        until = started + duration

        async def with_sampling() -> None:
            load = asyncio.create_task(drive(url, creds, concurrency, until, max_tokens))
            while not load.done():
                await asyncio.sleep(min(30.0, max(1.0, duration / 20)))
                samples.append(sample(procs))
                done = sum(len(c.results) for c in creds) - warm
                print(f"soak: t={time.monotonic() - started:5.0f} s  requests={done}  "
                      f"fds/RSS={samples[-1]}", flush=True)  # fmt: skip
            await load

        asyncio.run(with_sampling())
        elapsed = time.monotonic() - started
        time.sleep(5)
        after = sample(procs)
        return report(stack, creds, before, after, samples, elapsed, warm)
    finally:
        stack.close()


def report(
    stack: Stack,
    creds: list[Credential],
    before: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    samples: list[dict[str, tuple[int, int]]],
    elapsed: float,
    warm: int,
) -> int:
    results = [r for c in creds for r in c.results]
    errors = [r for r in results if not r.complete]
    tokens = sum(r.tokens for r in results)
    time.sleep(2)  # the last usage batch
    lost = double = mismatched = 0
    for cred in creds:
        rows, completion = billed(stack, cred)
        lost += max(0, len(cred.results) - rows)
        double += max(0, rows - len(cred.results))
        mismatched += completion != sum(r.tokens for r in cred.results)
    failures = []
    if errors:
        kinds = {f"{r.status} {r.error or r.transport_error or r.body[:80]}" for r in errors[:5]}
        failures.append(f"{len(errors)} of {len(results)} requests failed: {kinds}")
    if lost or double or mismatched:
        failures.append(f"usage: {lost} lost, {double} double-billed, {mismatched} credentials "
                        f"billed a different token count than delivered")  # fmt: skip
    peak = {n: max(s[n][1] for s in samples) if samples else 0 for n in before}
    for name in before:
        fd_before, rss_before = before[name]
        fd_after, rss_after = after[name]
        if fd_after > fd_before + FD_SLACK:
            failures.append(f"{name}: {fd_before} fds idle before, {fd_after} after")
        growth = (rss_after - rss_before) / 1024
        if growth > RSS_BOUND_MIB[name]:
            failures.append(f"{name}: RSS grew {growth:.0f} MiB (bound {RSS_BOUND_MIB[name]})")
    chunks = [r.chunks for r in results]
    lines = [
        "",
        "=" * 72,
        "soak summary",
        "=" * 72,
        f"  duration:            {elapsed:.0f} s after a 20 s warm-up ({warm} requests)",
        f"  streams:             {len(creds)} credentials ({USERS} users, API keys and sessions)",
        f"  requests:            {len(results)} ({len(results) / max(elapsed, 1):.1f}/s)",
        f"  tokens delivered:    {tokens} ({tokens / max(elapsed, 1):.0f}/s)",
        f"  failed requests:     {len(errors)} (must be 0)",
        f"  requests lost:       {lost} (must be 0)",
        f"  double-billed:       {double} (must be 0)",
        f"  chunks per request:  median {statistics.median(chunks) if chunks else 0}",
    ]
    for name in before:
        lines.append(
            f"  {name:<11} fds {before[name][0]} -> {after[name][0]} (slack {FD_SLACK}); "
            f"RSS {before[name][1] // 1024} -> {after[name][1] // 1024} MiB, peak "
            f"{peak[name] // 1024} MiB (growth bound {RSS_BOUND_MIB[name]} MiB)"
        )
    lines += [f"  FAILED: {f}" for f in failures]
    lines.append(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    print("\n".join(lines), flush=True)
    return 1 if failures else 0

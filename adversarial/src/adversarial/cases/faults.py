"""Faults as an operator meets them, each on a stack of its own: a killed, stopped or
terminated llm-server, a terminated gateway, a locked database, Redis gone. Every case checks
what the clients got and that every answered request was billed exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from adversarial.procs import Proc, free_port, spawn
from adversarial.registry import Context, Skip, case
from adversarial.sse import StreamResult, bearer, chat_body, stream, stream_sync
from adversarial.stack import WEB_ORIGIN, Stack, fresh_ip, own_stack, two_servers

# Fault stacks answer fast: short timeouts, so a fault shows within seconds.
FAULT_GATEWAY_ENV = {"LLM_HEALTH_INTERVAL_MS": "1000"}


def long_stream(max_tokens: int) -> dict[str, object]:
    return chat_body(max_tokens, "Write a very long story about the sea:", ignore_eos=True)


async def streams_with_fault(
    url: str,
    token: str,
    count: int,
    max_tokens: int,
    fault: Callable[[], None],
    *,
    after_tokens: int = 3,
) -> list[StreamResult]:
    """Start `count` streams; once each has `after_tokens` tokens, call `fault()` (in a
    thread: it may block); read every stream to its end."""
    started = asyncio.Event()
    results: list[StreamResult] = []

    def progress(_: StreamResult) -> None:
        # Every stream under way (or already over: the fault then finds nothing to break,
        # and the case's assertions say so).
        if len(results) == count and all(r.tokens >= after_tokens or r.ended for r in results):
            started.set()

    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10)) as client:
        tasks = []
        for _ in range(count):
            result = StreamResult()
            results.append(result)
            tasks.append(asyncio.create_task(_stream_into(client, url, token, max_tokens, result,
                                                          progress)))  # fmt: skip
        await asyncio.wait_for(started.wait(), 120)
        await asyncio.to_thread(fault)
        await asyncio.gather(*tasks)
    return results


async def _stream_into(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    max_tokens: int,
    into: StreamResult,
    progress: Callable[[StreamResult], None],
) -> None:
    def relay(current: StreamResult) -> None:
        into.__dict__.update(current.__dict__)
        progress(into)

    final = await stream(client, url, bearer(token), long_stream(max_tokens), on_chunk=relay)
    into.__dict__.update(final.__dict__)
    into.ended = True
    progress(into)


def terminate_timed(proc: Proc, exited: list[float], timeout: float = 30.0) -> Callable[[], None]:
    """A fault: SIGTERM `proc` and wait up to `timeout` for it to exit, appending how long it
    took to `exited`; SIGKILL after that, as a supervisor would."""

    def terminate() -> None:
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        try:
            proc.process.wait(timeout=timeout)
            exited.append(time.monotonic() - started)
        except subprocess.TimeoutExpired:
            proc.kill()

    return terminate


def ended_in_band(result: StreamResult) -> bool:
    """The stream told its client it failed (an error event, no [DONE])."""
    return result.status == 200 and result.error is not None and not result.done


def check_billing(
    ctx: Context, stack: Stack, key_id: str, results: list[StreamResult], *, exact: bool
) -> None:
    rows = stack.wait_usage(key_id, len(results), timeout=20)
    if len(rows) < len(results):
        ctx.tally.requests_lost += len(results) - len(rows)
    if len(rows) > len(results):
        ctx.tally.double_billed += len(rows) - len(results)
    assert len(rows) == len(results), f"{len(results)} requests, {len(rows)} usage rows: {rows}"
    billed = sum(int(r["completion"]) for r in rows)
    delivered = sum(r.tokens for r in results)
    if exact:
        assert billed == delivered, f"billed {billed} completion tokens, delivered {delivered}"
    else:
        assert billed >= delivered, f"billed {billed} completion tokens < delivered {delivered}"


@case(
    "faults",
    "llm-server-killed-mid-stream",
    "SIGKILL of the llm-server serving a stream: in-band error, no [DONE], exactly one usage "
    "row; the gateway stays up",
)
def killed_mid_stream(ctx: Context) -> None:
    with own_stack(gateway_env=FAULT_GATEWAY_ENV) as stack:
        user = stack.account("victim")
        ctx.tally.faults_injected += 1
        results = asyncio.run(
            streams_with_fault(
                f"{stack.gw}/v1/chat/completions", user.api_key, 2, 400, stack.llm[0].kill
            )
        )
        for result in results:
            assert ended_in_band(result), f"not an in-band error: {result}"
        check_billing(ctx, stack, user.api_key_id, results, exact=False)
        assert httpx.get(f"{stack.gw}/health").status_code == 200
        ctx.tally.faults_survived += 1


@case(
    "faults",
    "llm-server-sigterm-live-streams",
    "SIGTERM of llm-server with 4 live streams: each completes or ends in-band within the "
    "drain time, the process exits, usage rows equal the tokens delivered",
)
def llm_sigterm(ctx: Context) -> None:
    with own_stack(llm_env={"LLM_DRAIN_TIMEOUT_S": "2"}, gateway_env=FAULT_GATEWAY_ENV) as stack:
        user = stack.account("drained")
        ctx.tally.faults_injected += 1
        exited: list[float] = []
        terminate = terminate_timed(stack.llm[0], exited)
        results = asyncio.run(
            streams_with_fault(f"{stack.gw}/v1/chat/completions", user.api_key, 4, 600, terminate)
        )
        assert exited and exited[0] < 15, f"llm-server took {exited} s to exit"
        for result in results:
            assert result.complete or ended_in_band(result), f"cut without a word: {result}"
        assert any(ended_in_band(r) for r in results), "no stream was cut by the drain"
        check_billing(ctx, stack, user.api_key_id, results, exact=True)
        ctx.tally.faults_survived += 1


@case(
    "faults",
    "gateway-sigterm-live-streams",
    "SIGTERM of the gateway with 4 live streams: it exits within 30 s, every stream ends with an "
    "in-band error, every usage row is written",
)
def gateway_sigterm(ctx: Context) -> None:
    with own_stack(gateway_env=FAULT_GATEWAY_ENV) as stack:
        user = stack.account("cut-off")
        ctx.tally.faults_injected += 1
        exited: list[float] = []
        terminate = terminate_timed(stack.gateway, exited)
        results = asyncio.run(
            streams_with_fault(f"{stack.gw}/v1/chat/completions", user.api_key, 4, 3000, terminate)
        )
        assert exited, "the gateway did not exit within 30 s of SIGTERM"
        for result in results:
            assert result.complete or ended_in_band(result), f"cut without a word: {result}"
        check_billing(ctx, stack, user.api_key_id, results, exact=False)
        ctx.tally.faults_survived += 1


@case(
    "faults",
    "stalled-upstream",
    "one of two llm-servers SIGSTOPped: 10 requests (5 streamed, 5 JSON) all answered by the "
    "other within 30 s; both stopped: 504 (not 500) with a message, well before 120 s",
)
def stalled(ctx: Context) -> None:
    stack = two_servers(ctx)
    user = stack.account("stalled")
    stack.admin("set-limits", "--email", user.email, "--concurrent-streams", "0",
                "--requests-per-minute", "0")  # fmt: skip
    ctx.tally.faults_injected += 1
    stack.llm[0].signal(signal.SIGSTOP)
    try:

        async def burst() -> list[tuple[int, float]]:
            async with httpx.AsyncClient(timeout=150) as client:
                url = f"{stack.gw}/v1/chat/completions"

                async def one(streamed: bool) -> tuple[int, float]:
                    started = time.monotonic()
                    if not streamed:
                        # llm-server sends a JSON answer's headers with the whole answer: only
                        # the gateway's health check can tell a stopped server from a slow one.
                        body = chat_body(4, "hi", stream=False)
                        res = await client.post(url, headers=bearer(user.api_key), json=body)
                        return res.status_code, time.monotonic() - started
                    result = await stream(client, url, bearer(user.api_key), chat_body(4, "hi"))
                    took = time.monotonic() - started
                    if result.complete:
                        return 200, took
                    # A 200 that ended in-band counts as 598, no answer at all as 599.
                    return (result.status if result.status != 200 else 598) or 599, took

                return await asyncio.gather(*(one(i % 2 == 0) for i in range(10)))

        answers = asyncio.run(burst())
        slow = [a for a in answers if a[0] != 200 or a[1] > 30]
        assert not slow, f"with one server stopped: {answers}"
        stack.llm[1].signal(signal.SIGSTOP)
        started = time.monotonic()
        result = stream_sync(
            f"{stack.gw}/v1/chat/completions", bearer(user.api_key), chat_body(4, "hi")
        )
        took = time.monotonic() - started
        assert result.status == 504, f"both stopped: {result}"
        assert "internal server error" not in result.body.lower(), result.body
        assert took < 60, f"504 after {took:.0f} s"
    finally:
        for proc in stack.llm:
            proc.signal(signal.SIGCONT)
    ctx.tally.faults_survived += 1


@contextlib.contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    """Another process holds the SQLite database's write lock (BEGIN EXCLUSIVE) meanwhile."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            ready.set()
            release.wait(120)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


@case(
    "faults",
    "database-locked",
    "SQLite locked by another process: sign-in 503 + Retry-After, readiness 503, API-key "
    "answers billed once the lock is released (no usage row lost)",
)
def db_locked(ctx: Context) -> None:
    with own_stack(gateway_env=FAULT_GATEWAY_ENV) as stack:
        user = stack.account("locked-out")
        ctx.tally.faults_injected += 1
        problems = []
        with sqlite_locked(stack.database):
            signed = httpx.post(
                f"{stack.gw}/api/auth/sign-in/email",
                json={"email": user.email, "password": user.password},
                headers={"origin": WEB_ORIGIN, "x-forwarded-for": fresh_ip()},
                timeout=60,
            )
            if signed.status_code != 503 or not signed.headers.get("retry-after"):
                problems.append(f"sign-in: {signed.status_code} {signed.text[:120]}")
            ready = httpx.get(f"{stack.gw}/health/ready", timeout=30)
            if ready.status_code != 503:
                problems.append(f"/health/ready: {ready.status_code}")
            created = httpx.post(
                f"{stack.gw}/api/conversations",
                json={},
                headers=bearer(user.session),
                timeout=60,
            )
            if created.status_code != 503:
                problems.append(f"new conversation: {created.status_code} {created.text[:120]}")
            answered = []
            for _ in range(3):
                result = asyncio.run(one_stream(stack, user.api_key, 8))
                if result.status == 200:
                    answered.append(result)
                elif result.status != 503:
                    problems.append(f"API-key stream: {result.status} {result.body[:120]}")
            time.sleep(6)  # longer than any busy timeout: the writes must outlast it
        if answered:
            try:
                check_billing(ctx, stack, user.api_key_id, answered, exact=True)
            except AssertionError as error:
                problems.append(f"usage after release: {error}")
        assert not problems, "\n".join(problems)
        ctx.tally.faults_survived += 1


async def one_stream(stack: Stack, token: str, max_tokens: int) -> StreamResult:
    async with httpx.AsyncClient(timeout=60) as client:
        return await stream(
            client, f"{stack.gw}/v1/chat/completions", bearer(token), chat_body(max_tokens)
        )


def redis_server() -> str:
    """Debian's redis-server, installed with apt-get when missing (as the gateway's tests do)."""
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(path).exists():
        subprocess.run(["apt-get", "install", "-y", "redis-server"], capture_output=True,
                       check=False, timeout=300)  # fmt: skip
    if not Path(path).exists():
        raise Skip("redis-server is not installed and apt-get could not install it")
    return path


@case(
    "faults",
    "redis-down",
    "with REDIS_URL, Redis killed: requests get an answer or a 503 (never 500, never hang); "
    "Redis back: served again",
)
def redis_down(ctx: Context) -> None:
    binary = redis_server()
    with tempfile.TemporaryDirectory(prefix="adversarial-redis-") as tmp:
        port = free_port()
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                "--save", "", "--appendonly", "no"]  # fmt: skip
        redis = spawn("redis", argv, dict(os.environ), Path(tmp), Path(tmp))
        redis.url = f"redis://127.0.0.1:{port}"
        try:
            _wait_port(port)
            env = {**FAULT_GATEWAY_ENV, "REDIS_URL": redis.url}
            with own_stack(gateway_env=env) as stack:
                user = stack.account("redis-user")
                ok = asyncio.run(one_stream(stack, user.api_key, 4))
                assert ok.complete, f"before the fault: {ok}"
                ctx.tally.faults_injected += 1
                redis.kill()
                statuses = []
                for _ in range(4):
                    started = time.monotonic()
                    result = asyncio.run(one_stream(stack, user.api_key, 4))
                    statuses.append((result.status, round(time.monotonic() - started, 1)))
                bad = [s for s in statuses if s[0] not in (200, 503) or s[1] > 30]
                assert not bad, f"with Redis down: {statuses}"
                redis2 = spawn("redis2", argv, dict(os.environ), Path(tmp), Path(tmp))
                try:
                    _wait_port(port)
                    deadline = time.monotonic() + 30
                    result = asyncio.run(one_stream(stack, user.api_key, 4))
                    while not result.complete and time.monotonic() < deadline:
                        time.sleep(1)
                        result = asyncio.run(one_stream(stack, user.api_key, 4))
                    assert result.complete, f"Redis back, still failing: {result}"
                finally:
                    redis2.stop()
                ctx.tally.faults_survived += 1
        finally:
            redis.stop()


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")

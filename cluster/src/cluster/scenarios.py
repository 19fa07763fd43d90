"""What the multi-host test shows, one scenario at a time, on a started `Stack`.

Each scenario sends its requests from the client host, checks what came back, then checks the
usage rows in PostgreSQL against it: every answered request has exactly one row (lost = 0,
double-billed = 0). Figures are added to a `Report` printed at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cluster.client import Answer, body, complete
from cluster.stack import PUBLIC_URL, Stack, now_ms, sign_in, usage_rows

_prompts = itertools.count()
# Statuses only the completion pipeline gives, which records each (401 or a database outage's
# 503 may come before it, with no row).
RECORDED = (200, 429, 502)


def fresh(text: str) -> str:
    """`text` made unique (no cache hit, no shared prefix effects between requests)."""
    return f"{text} #{next(_prompts)}"


@dataclass
class Report:
    """The run's figures."""

    sent: int = 0
    admitted: int = 0
    refused: int = 0
    lost: int = 0
    double_billed: int = 0
    server_errors: int = 0
    cut_streams: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def time(self, what: str, seconds: float) -> None:
        """Note a measured time (a scenario run twice notes two)."""
        self.times.setdefault(what, []).append(seconds)

    def count(self, answers: list[Answer]) -> None:
        """Add answers to sent / admitted / refused / 5xx."""
        for a in answers:
            self.sent += 1
            if a.status == 200:
                self.admitted += 1
            elif 400 <= a.status < 500 or a.status == 503:
                self.refused += 1
            else:
                self.server_errors += 1

    def reconcile(self, answers: list[Answer], rows: list[dict[str, Any]], what: str) -> None:
        """Compare the answers' statuses with the usage rows: each answer exactly one row."""
        # A stream cut after its headers came with 200 is recorded as the failure it was (502).
        seen = Counter(
            502 if a.status == 200 and a.events and not a.done else a.status for a in answers
        )
        seen = Counter({s: n for s, n in seen.items() if s in RECORDED})
        stored = Counter(r["status"] for r in rows if r["status"] in RECORDED)
        lost = sum(max(0, seen[s] - stored[s]) for s in seen)
        double = sum(max(0, stored[s] - seen[s]) for s in stored)
        self.lost += lost
        self.double_billed += double
        assert (lost, double) == (0, 0), f"{what}: answers {dict(seen)} but rows {dict(stored)}"

    def render(self) -> str:
        lines = [
            "cluster figures:",
            f"  requests sent {self.sent}, admitted {self.admitted}, refused {self.refused}, "
            f"5xx other than 503 {self.server_errors}, lost {self.lost}, "
            f"double-billed {self.double_billed}, streams cut in-band {self.cut_streams}",
        ]
        lines += [
            f"  {k}: " + ", ".join(f"{v:.2f}" for v in values) + " s"
            for k, values in self.times.items()
        ]
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


def _client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    return httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10), limits=limits)


def poll(what: str, check: Callable[[], bool], timeout: float, every: float = 0.1) -> float:
    """Seconds until `check()` holds (errors count as not yet); fails after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except (httpx.HTTPError, OSError, KeyError):
            pass
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


# ------------------------------------------------------------------ state shared across gateways


class BackgroundLoad:
    """Streams from user `bg`, `workers` at a time through both gateways, while other scenarios
    run (they are shown under load); `stop()` returns after checking every answer completed
    and has exactly one usage row."""

    def __init__(self, stack: Stack, report: Report, workers: int) -> None:
        self.stack, self.report, self.workers = stack, report, workers
        self.answers: list[Answer] = []
        self.since = now_ms()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        key = self.stack.users["bg"].key

        async def worker(i: int) -> None:
            async with _client() as http:
                while not self._stop.is_set():
                    payload = body(fresh("Tell me about ships"), 16, stream=True)
                    self.answers.append(await complete(http, self.stack.urls[i % 2], key, payload))

        await asyncio.gather(*(worker(i) for i in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        self.report.count(self.answers)
        bad = [(a.status, a.code, a.transport_error) for a in self.answers if not a.done]
        assert not bad, f"background load: {bad}"
        time.sleep(1.0)
        rows = usage_rows(self.stack, "bg", self.since)
        self.report.reconcile(self.answers, rows, "background load")
        self.report.notes.append(
            f"background load: {len(self.answers)} streams, {self.workers} at a time, all "
            "completed with [DONE] while the scenarios above ran"
        )


def sessions(stack: Stack, report: Report) -> None:
    """A session made on A is valid on B; sign-out on B ends it on A; disabling on B ends the
    user's API key on A (within the gateways' auth cache bound, measured)."""
    a, b = stack.url("gw-a"), stack.url("gw-b")
    alice = stack.users["alice"]
    token = sign_in(a, alice.email)

    def me(url: str, credential: str) -> int:
        headers = {"authorization": f"Bearer {credential}"}
        return httpx.get(f"{url}/api/user", headers=headers, timeout=10).status_code

    assert me(b, token) == 200, "a session made on gw-a is not valid on gw-b"
    assert me(a, token) == 200
    out = httpx.post(
        f"{b}/api/auth/sign-out",
        headers={"authorization": f"Bearer {token}", "origin": PUBLIC_URL},
        timeout=10,
    )
    assert out.status_code == 200, out.text
    report.time(
        "sign-out on B effective on A",
        poll("sign-out on gw-b ends the session on gw-a", lambda: me(a, token) == 401, 10),
    )
    assert me(a, alice.key) == 200
    res = stack.admin("PATCH", "gw-b", f"/api/admin/users/{alice.id}", json={"disabled": True})
    assert res.status_code == 200, res.text
    report.time(
        "disable on B effective on A",
        poll("disabling on gw-b ends the API key on gw-a", lambda: me(a, alice.key) == 401, 10),
    )


async def _parallel(stack: Stack, user: str, payloads: list[dict[str, Any]]) -> list[Answer]:
    """Every payload at once, alternating the two gateways."""
    key = stack.users[user].key
    async with _client() as http:
        return await asyncio.gather(
            *(complete(http, stack.urls[i % 2], key, p) for i, p in enumerate(payloads))
        )


# Concurrent streams admitted at most: with the background load's two they stay within the
# llm-servers' sequences (4 each), so none waits in a server's queue past the idle timeout.
MAX_STREAMS = 4


def limits_exact(stack: Stack, report: Report, n: int, k: int) -> None:
    """N parallel requests at a limit of K, half through each gateway: exactly K admitted, for
    requests per minute and for concurrent streams (K at most MAX_STREAMS)."""
    user = "rate"
    for field_name, stream in (("requestsPerMinute", False), ("concurrentStreams", True)):
        if stream:
            k = min(k, MAX_STREAMS)
        limits = {"requestsPerMinute": 0, "concurrentStreams": 0, "tokensPerDay": 0}
        limits[field_name] = k
        res = stack.admin(
            "PATCH", "gw-b", f"/api/admin/users/{stack.users[user].id}/limits", json=limits
        )
        assert res.status_code == 200, res.text
        # Requests per minute are counted in fixed minutes: a burst across a minute's end
        # would meet two windows (2K admitted). Start it well inside one.
        while time.time() % 60 > 45:
            time.sleep(0.5)
        since = now_ms()
        # Streams long enough that all of them are still running when the last one arrives.
        size = 32 if stream else 2
        extra: dict[str, Any] = {"ignore_eos": True} if stream else {}
        payloads = [body(fresh("Count:"), size, stream=stream, **extra) for _ in range(n)]
        answers = asyncio.run(_parallel(stack, user, payloads))
        report.count(answers)
        statuses = Counter(a.status for a in answers)
        per_gateway = Counter(a.gateway for a in answers if a.status == 200)
        assert statuses == {200: k, 429: n - k}, f"{field_name}={k}, {n} requests: {statuses}"
        if stream:
            unfinished = [
                (a.status, a.events[-1:]) for a in answers if a.status == 200 and not a.done
            ]
            assert not unfinished, f"admitted streams that did not finish: {unfinished}"
        report.notes.append(
            f"{field_name}={k}: {n} parallel requests → {statuses[200]} admitted "
            f"(gw-a {per_gateway[stack.url('gw-a')]}, gw-b {per_gateway[stack.url('gw-b')]}), "
            f"{statuses[429]} refused 429"
        )
        time.sleep(0.5)
        report.reconcile(answers, usage_rows(stack, user, since), f"limits {field_name}")


def cache_shared(stack: Stack, report: Report) -> None:
    """A cache entry written through A is a hit through B for the same user, never for another."""
    payload = body(fresh("The capital of France is"), 6, temperature=0)

    async def one(user: str, gateway: str) -> Answer:
        async with _client() as http:
            return await complete(http, stack.url(gateway), stack.users[user].key, payload)

    first = asyncio.run(one("load", "gw-a"))
    again = asyncio.run(one("load", "gw-b"))
    other = asyncio.run(one("alice", "gw-b"))
    report.count([first, again, other])
    assert (first.status, first.cache) == (200, "MISS"), (first.status, first.cache, first.body)
    assert (again.status, again.cache) == (200, "HIT"), (again.status, again.cache)
    assert again.text == first.text
    assert (other.status, other.cache) == (200, "MISS"), "another user's request hit the cache"
    report.notes.append("cache: written via gw-a, HIT via gw-b (same user), MISS for another user")


def analytics(stack: Stack, report: Report) -> None:
    """Admin usage on either gateway counts the requests made through both."""
    rows = stack.postgres.psql("SELECT count(*) FROM usage_record")
    totals = []
    for gateway in ("gw-a", "gw-b"):
        res = stack.admin("GET", gateway, "/api/admin/usage?groupBy=user")
        assert res.status_code == 200, res.text
        totals.append(res.json()["totals"]["requests"])
    assert totals[0] == totals[1] == int(rows), f"usage totals {totals}, rows {rows}"
    report.notes.append(f"analytics: both gateways report {totals[0]} requests (= rows)")


# ------------------------------------------------------------------ faults


def _states(stack: Stack, server: str) -> list[str]:
    url = stack.llm_url(server)
    return [stack.server_states(g)[url] for g in ("gw-a", "gw-b")]


def _down(stack: Stack, server: str) -> bool:
    """Neither gateway counts `server` as usable any longer."""
    return all(s in ("unhealthy", "ejected") for s in _states(stack, server))


async def _streams_then(
    stack: Stack, count: int, fault: Callable[[], None], tokens: int
) -> list[Answer]:
    """`count` long streams through both gateways; once every one is under way, `fault()`."""
    key = stack.users["load"].key
    async with _client() as http:
        started = [asyncio.Event() for _ in range(count)]
        tasks = [
            asyncio.create_task(
                complete(
                    http,
                    stack.urls[i % 2],
                    key,
                    body(fresh("Once upon a time"), tokens, stream=True, ignore_eos=True),
                    started[i],
                )
            )
            for i in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 120)
        await asyncio.to_thread(fault)
        return await asyncio.gather(*tasks)


def _after(stack: Stack, count: int) -> list[Answer]:
    """`count` short requests through both gateways, in parallel."""
    payloads = [body(fresh("Hello"), 4) for _ in range(count)]
    return asyncio.run(_parallel(stack, "load", payloads))


def _check_fault(
    stack: Stack,
    report: Report,
    server: str,
    streams: list[Answer],
    after: list[Answer],
    window: tuple[int, int],
    what: str,
) -> None:
    """Streams on the failed server ended in-band without [DONE]; the others completed; the
    requests after went to the other server; every answer has exactly one usage row."""
    other = stack.llm_url("llm-2" if server == "llm-1" else "llm-1")
    report.count(streams + after)
    cut = [s for s in streams if not s.done]
    assert all(s.status == 200 for s in streams), [s.status for s in streams]
    assert all(s.in_band_error for s in cut), "a cut stream ended without an in-band error"
    assert not any(s.in_band_error for s in streams if s.done)
    assert cut, f"{what}: no stream was on {server} (nothing to show)"
    assert all(a.status == 200 for a in after), [(a.status, a.code) for a in after]
    report.cut_streams += len(cut)
    time.sleep(1.0)  # usage rows are written just after the answers end
    since, split = window
    rows = usage_rows(stack, "load", since)
    report.reconcile(streams + after, rows, what)
    # A row's ts is its request's start: the streams began before `split`, the rest after.
    first = [r for r in rows if r["ts"] < split]
    # A stream on the failed server may have ended on its own before the fault (the base
    # model's chat stops at its next "User:" turn, sometimes after a few tokens): that one is
    # an ok row there; every stream cut is exactly one failed row there.
    on_failed = [r for r in first if r["server"] == stack.llm_url(server)]
    failed_rows = [r for r in on_failed if r["outcome"] != "ok"]
    assert len(failed_rows) == len(cut), f"{what}: {len(cut)} cut, rows {first}"
    assert len(on_failed) - len(failed_rows) <= len(streams) - len(cut), on_failed
    later = [r for r in rows if r["ts"] >= split]
    assert all(r["server"] == other for r in later), f"{what}: after the fault {later}"
    report.notes.append(
        f"{what}: {len(streams)} streams, {len(cut)} on {server} cut in-band (no [DONE]), "
        f"{len(streams) - len(cut)} completed; {len(after)} requests after → all on the other"
    )


def _fault_round(
    stack: Stack,
    report: Report,
    server: str,
    fault: tuple[str, Callable[[], None]],
    repair: tuple[str, Callable[[], None]],
    streams: int,
    tokens: int,
) -> None:
    """Long streams through both gateways; once all are under way, `fault` strikes `server`
    (timed until both gateways mark it down, while the other server's streams go on); then
    requests that must all go to the other server; then `repair`, timed until both gateways
    use `server` again."""
    since = now_ms()
    poll("both llm-servers healthy", lambda: _states(stack, server) == ["healthy"] * 2, 30)
    (what, strike), (repaired, fix) = fault, repair

    def strike_and_time() -> None:
        strike()
        report.time(
            f"{what} → marked down by both gateways",
            poll(f"gateways see {server} down", lambda: _down(stack, server), 30, every=0.05),
        )

    answers = asyncio.run(_streams_then(stack, streams, strike_and_time, tokens))
    split = now_ms()
    after = _after(stack, 4)
    _check_fault(stack, report, server, answers, after, (since, split), what)
    fix()
    report.time(
        f"{repaired} → re-admitted by both gateways",
        poll(f"gateways re-admit {server}", lambda: _states(stack, server) == ["healthy"] * 2, 30),
    )


def kill_llm_server(stack: Stack, report: Report, streams: int, tokens: int) -> None:
    """SIGKILL llm-1 mid-stream; start it again; it is re-admitted."""
    proc = stack.llm["llm-1"]

    def restart() -> None:
        proc.start()
        poll("llm-1 ready again", lambda: stack.llm_ready("llm-1"), 300, every=0.2)

    _fault_round(
        stack, report, "llm-1", ("llm-1 killed", lambda: proc.kill(signal.SIGKILL)),
        ("llm-1 ready again", restart), streams, tokens,
    )  # fmt: skip


def cut_link(stack: Stack, report: Report, streams: int, tokens: int) -> None:
    """`ip link set eth0 down` on llm-2 mid-stream (its streams end at the gateways' idle
    timeout; the health checks notice sooner); up again; it is re-admitted."""
    host = stack.net.hosts["llm-2"]
    _fault_round(
        stack, report, "llm-2", ("llm-2 link cut", lambda: host.link(False)),
        ("llm-2 link up", lambda: host.link(True)), streams, tokens,
    )  # fmt: skip


def _probe(stack: Stack, count: int) -> list[Answer]:
    return _after(stack, count)


def restart_redis(stack: Stack, report: Report) -> None:
    """Redis stopped: LLM requests fail closed with 503 LIMITS_UNAVAILABLE (never a 500);
    started again (empty): requests pass again."""
    stack.redis.proc.kill(signal.SIGTERM)  # type: ignore[union-attr]
    during: list[Answer] = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        during += _probe(stack, 4)
    report.count(during)
    codes = Counter((a.status, a.code) for a in during)
    assert all(a.status in (200, 503) for a in during), f"redis down: {codes}"
    assert all(a.code == "limits_unavailable" for a in during if a.status == 503), codes
    assert any(a.status == 503 for a in during), f"redis down, yet no refusal: {codes}"
    stack.redis.start()
    report.time(
        "redis back → requests pass on both gateways",
        poll(
            "requests pass after redis restart",
            lambda: all(a.status == 200 for a in _probe(stack, 2)),
            30,
            every=0.2,
        ),
    )
    report.notes.append(f"redis down: {sum(codes.values())} requests → {dict(codes)}, no 500")


def restart_postgres(stack: Stack, report: Report) -> None:
    """PostgreSQL stopped: requests get 503 (or 200 on cached credentials, their usage rows
    spooled), never a 500; started again: requests pass and every row arrives once."""
    since = now_ms()
    stack.postgres.stop()
    during: list[Answer] = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        during += _probe(stack, 4)
    codes = Counter((a.status, a.code) for a in during)
    assert all(a.status in (200, 503) for a in during), f"postgres down: {codes}"
    assert any(a.status == 503 for a in during), f"postgres down, yet no refusal: {codes}"
    stack.postgres.start()
    after: list[Answer] = []

    def passes() -> bool:
        batch = _probe(stack, 2)
        after.extend(batch)
        return all(a.status == 200 for a in batch)

    report.time(
        "postgres back → requests pass on both gateways",
        poll("requests pass after postgres restart", passes, 60, every=0.2),
    )
    report.count(during + after)
    answers = during + after
    # Rows of requests answered while the database was down come from the spool once it is back.
    poll(
        "every answered request has its row",
        lambda: (
            len([r for r in usage_rows(stack, "load", since) if r["status"] == 200])
            >= sum(a.status == 200 for a in answers)
        ),
        30,
        every=0.5,
    )
    report.reconcile(answers, usage_rows(stack, "load", since), "postgres restart")
    report.notes.append(f"postgres down: {sum(codes.values())} requests → {dict(codes)}, no 500")

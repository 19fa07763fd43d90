"""A small HTTP/1.1 load client on raw asyncio protocols, for sub-millisecond figures.

httpx or aiohttp spend more CPU per request than the proxies under test add, and on 2 cores
that CPU is taken from them. This client keeps a pool of keep-alive connections (TCP_NODELAY),
writes a pre-built request in one call, and parses the answer incrementally — Content-Length
or chunked bodies, and for `text/event-stream` every `data:` event with its arrival time.
Times are `time.monotonic_ns()`: the same CLOCK_MONOTONIC that the stub upstream stamps into
its chunks (`process.hrtime.bigint()`), so a chunk's delivery delay is arrival − stamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

STAMP = re.compile(rb'"(?:content|text)":\s*"t(\d+);')


@dataclass
class Result:
    """One request. Times are monotonic nanoseconds; 0 = did not happen."""

    intended: int = 0  # when the schedule wanted it sent
    sent: int = 0  # when its bytes were written
    first_byte: int = 0
    done: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[tuple[int, bytes]] = field(default_factory=list)  # (arrival, data payload)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    @property
    def latency_ms(self) -> float:
        return (self.done - self.sent) / 1e6

    @property
    def saw_done(self) -> bool:
        return any(data == b"[DONE]" for _, data in self.events)

    def stamped_delays_ms(self) -> list[float]:
        """For stub streams: arrival minus the stub's stamp, per content event."""
        out = []
        for arrival, data in self.events:
            if m := STAMP.search(data):
                out.append((arrival - int(m.group(1))) / 1e6)
        return out


class ResponseParser:
    """Incremental HTTP/1.1 response parser (one response; `reset()` for the next)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buf = b""
        self.status = 0
        self.headers: dict[str, str] = {}
        self._head_done = False
        self._length: int | None = None  # Content-Length, or None when chunked
        self._chunked = False
        self._chunk_left = -1  # -1: expecting a size line; -2: expecting the CRLF after data
        self.body = bytearray()
        self._sse = False
        self._sse_buf = b""
        self.events: list[tuple[int, bytes]] = []
        self.complete = False
        self.keep_alive = True

    def feed(self, data: bytes, now: int) -> bool:
        """Adds bytes received at `now`; True once the response is complete."""
        self._buf += data
        if not self._head_done:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
            lines = head.split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self._head_done = True
            self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            if not self._chunked:
                self._length = int(self.headers.get("content-length", "0"))
            self._sse = self.headers.get("content-type", "").startswith("text/event-stream")
            self.keep_alive = self.headers.get("connection", "").lower() != "close"
        if self._chunked:
            self._feed_chunked(now)
        else:
            assert self._length is not None
            take = self._buf[: self._length - len(self.body)]
            self._buf = self._buf[len(take) :]
            self._body(take, now)
            self.complete = len(self.body) >= self._length
        return self.complete

    def _feed_chunked(self, now: int) -> None:
        while self._buf and not self.complete:
            if self._chunk_left == -1:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(self._buf[:end].split(b";")[0], 16)
                self._buf = self._buf[end + 2 :]
                if size == 0:
                    # Last chunk: no trailers expected, just the final CRLF.
                    if self._buf.startswith(b"\r\n"):
                        self._buf = self._buf[2:]
                        self.complete = True
                    else:
                        self._chunk_left = -3
                    continue
                self._chunk_left = size
            elif self._chunk_left == -2 or self._chunk_left == -3:
                if len(self._buf) < 2:
                    return
                self._buf = self._buf[2:]
                if self._chunk_left == -3:
                    self.complete = True
                self._chunk_left = -1
            else:
                take = self._buf[: self._chunk_left]
                self._buf = self._buf[len(take) :]
                self._chunk_left -= len(take)
                self._body(take, now)
                if self._chunk_left == 0:
                    self._chunk_left = -2

    def _body(self, data: bytes, now: int) -> None:
        if not data:
            return
        if not self._sse:
            self.body += data
            return
        self._sse_buf += data
        while (end := self._sse_buf.find(b"\n\n")) >= 0:
            event, self._sse_buf = self._sse_buf[:end], self._sse_buf[end + 2 :]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self.events.append((now, line[5:].strip()))


class _Conn(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[_Conn], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.waiter: asyncio.Future[None] | None = None
        self.first_byte = 0
        self.done_at = 0
        self.closed = False
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if self.first_byte == 0:
            self.first_byte = now
        try:
            done = self.parser.feed(data, now)
        except (ValueError, IndexError) as error:
            self._fail(f"bad response: {error}")
            return
        if done:
            self.done_at = now
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        self._fail(f"connection lost: {exc}" if exc else "connection closed")

    def _fail(self, message: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(message))
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """Keep-alive connections to one host:port, one request at a time on each (no
    pipelining); a new connection is opened when none is free, up to `max_connections`."""

    def __init__(self, host: str, port: int, max_connections: int = 512) -> None:
        self.host, self.port, self.max_connections = host, port, max_connections
        self._free: list[_Conn] = []
        self._all: set[_Conn] = set()
        self.refused = 0  # requests not sent: every connection busy

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: _Conn(self._lost), self.host, self.port)
        self._all.add(proto)
        return proto

    def _lost(self, conn: _Conn) -> None:
        self._all.discard(conn)
        with contextlib.suppress(ValueError):
            self._free.remove(conn)

    async def warm(self, n: int) -> None:
        """Opens `n` idle connections ahead of a run."""
        conns = [await self._connect() for _ in range(n)]
        self._free.extend(conns)

    async def request(self, raw: bytes, result: Result, timeout: float = 60.0) -> Result:
        """Sends `raw` (a complete request) and fills `result`."""
        conn: _Conn | None = None
        while self._free:
            candidate = self._free.pop()
            if not candidate.closed:
                conn = candidate
                break
        if conn is None:
            if len(self._all) >= self.max_connections:
                self.refused += 1
                result.error = "client: every connection busy"
                return result
            try:
                conn = await self._connect()
            except OSError as error:
                result.error = f"connect: {error}"
                return result
        conn.parser.reset()
        conn.first_byte = conn.done_at = 0
        conn.waiter = asyncio.get_running_loop().create_future()
        assert conn.transport is not None
        result.sent = time.monotonic_ns()
        conn.transport.write(raw)
        try:
            await asyncio.wait_for(conn.waiter, timeout)
        except (ConnectionError, TimeoutError) as error:
            result.error = str(error) or type(error).__name__
            result.done = time.monotonic_ns()
            conn.transport.close()
            p = conn.parser
            result.status, result.headers, result.events = p.status, p.headers, p.events
            result.first_byte = conn.first_byte
            return result
        p = conn.parser
        result.done = conn.done_at
        result.first_byte = conn.first_byte
        result.status, result.headers = p.status, p.headers
        result.body, result.events = bytes(p.body), p.events
        conn.waiter = None
        if p.keep_alive and not conn.closed:
            self._free.append(conn)
        else:
            conn.transport.close()
        return result

    def close(self) -> None:
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()


def build_request(
    method: str, host: str, port: int, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def open_loop(
    rate: float,
    duration: float,
    send: Callable[[int, Result], Awaitable[Result]],
    settle: float = 30.0,
) -> list[Result]:
    """Starts request k at t0 + k/rate whatever the backlog (open loop), for `duration`
    seconds; then waits up to `settle` seconds for the stragglers."""
    n = int(rate * duration)
    period = 1e9 / rate
    t0 = time.monotonic_ns() + 20_000_000
    tasks: list[asyncio.Future[Result]] = []
    for k in range(n):
        target = t0 + int(k * period)
        delay = target - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        tasks.append(asyncio.ensure_future(send(k, Result(intended=target))))
    done, _ = await asyncio.wait(tasks, timeout=settle) if tasks else (set(), set())
    results = []
    for task in tasks:
        if task in done:
            results.append(task.result())
        else:
            task.cancel()
            results.append(Result(error="client: no answer before the end of the run"))
    return results


async def closed_loop(
    clients: int, count: int, send: Callable[[int, Result], Awaitable[Result]]
) -> list[Result]:
    """`clients` loops, each sending its next request when its last one ended, `count`
    requests in all."""
    results: list[Result] = []
    counter = iter(range(count))

    async def one() -> None:
        for k in counter:
            now = time.monotonic_ns()
            results.append(await send(k, Result(intended=now)))

    await asyncio.gather(*(one() for _ in range(clients)))
    return results

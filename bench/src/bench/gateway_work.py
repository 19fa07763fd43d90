"""`python -m bench.gateway_work`: the gateway at work, on real llm-servers (the embedded
model).

- **cache**: one llm-server, the gateway with its response cache on. One deterministic
  request (temperature 0) fills the cache; then many identical ones, each checked for
  `X-Cache: HIT`: one client at a time (closed loop), then an open-loop rate, JSON and
  streamed (the cache key leaves out `stream`, so a streamed request hits the same entry).
- **failover**: two llm-servers, the gateway balancing over both with a short health interval;
  closed-loop clients send short requests (streamed and not, alternately) for `--duration`
  seconds and one llm-server is SIGKILLed at `--kill-at`. Every failure is classified:
  *in flight on the killed server* (sent before the kill and placed on that server, per the
  gateway's usage row — allowed: a stream already started gets an in-band error) or *not yet
  started on it* (must be zero).

JSON and markdown under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.gateway_latency import log, run_loop
from bench.gw import procs
from bench.gw.httpload import HttpClient, Result, build_request, closed_loop, open_loop
from bench.gw.report import work_markdown
from bench.gw.stats import percentile
from bench.targets import ROOT


def chat_raw(gw: procs.Proc, body: dict[str, Any]) -> bytes:
    headers = {
        "Authorization": f"Bearer {gw.token}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if body.get("stream") else "application/json",
    }
    return build_request(
        "POST", "127.0.0.1", gw.port, "/v1/chat/completions", headers, json.dumps(body).encode()
    )


def hit_figures(results: list[Result], stream: bool) -> dict[str, Any]:
    hits = [r for r in results if r.ok and r.headers.get("x-cache") == "HIT"]
    if stream:
        hits = [r for r in hits if r.saw_done]
    lat = [r.latency_ms for r in hits]
    first = [(r.first_byte - r.sent) / 1e6 for r in hits if r.first_byte]
    return {
        "requests": len(results),
        "hits": len(hits),
        "not_hits": len(results) - len(hits),
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "first_byte_p50_ms": percentile(first, 50),
        "loadavg_1m": os.getloadavg()[0],
    }


async def cache_bench(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    started: list[procs.Proc] = []
    try:
        llm = procs.start_llm_server(logs, token, extra_env={"LLM_MAX_RUNNING": "4"})
        started.append(llm)
        gw = procs.start_gateway(logs, [llm.url], token, cache=True, name="gateway-cache")
        started.append(gw)
        body = {
            "model": "default",
            "messages": [{"role": "user", "content": "Name three colours."}],
            "temperature": 0,
            "max_tokens": 16,
        }
        client = HttpClient("127.0.0.1", gw.port)
        first = await client.request(chat_raw(gw, body), Result(), timeout=120)
        if not first.ok:
            raise RuntimeError(f"warm-up request failed: {first.status} {first.body[:300]!r}")
        miss = {"x_cache": first.headers.get("x-cache"), "latency_ms": first.latency_ms}
        log(f"cache: first request {miss}")
        plain, streamed = chat_raw(gw, body), chat_raw(gw, {**body, "stream": True})
        out: dict[str, Any] = {"first_request": miss, "answer": first.body.decode()[:400]}

        async def send_plain(_k: int, r: Result) -> Result:
            return await client.request(plain, r)

        async def send_stream(_k: int, r: Result) -> Result:
            return await client.request(streamed, r)

        await closed_loop(1, 200, send_plain)  # JIT warm-up, not counted
        out["json_c1"] = hit_figures(await closed_loop(1, args.cache_requests, send_plain), False)
        out["stream_c1"] = hit_figures(await closed_loop(1, args.cache_requests, send_stream), True)
        out["json_rate"] = hit_figures(
            await open_loop(args.cache_rate, args.cache_duration, send_plain), False
        )
        out["stream_rate"] = hit_figures(
            await open_loop(args.cache_rate, args.cache_duration, send_stream), True
        )
        out["cache_rate"] = args.cache_rate
        client.close()
        for key in ("json_c1", "stream_c1", "json_rate", "stream_rate"):
            f = out[key]
            log(
                f"cache {key}: {f['hits']}/{f['requests']} hits, p50 {f['p50_ms']:.3f} ms, "
                f"p99 {f['p99_ms']:.3f} ms"
            )
        return out
    finally:
        for proc in reversed(started):
            proc.stop()


@dataclass
class Outcome:
    k: int
    client: int
    stream: bool
    sent: float  # seconds since the run started
    sent_epoch_ms: float
    ended: float = 0.0
    first_content: float | None = None
    status: int = 0
    ok: bool = False
    error: str | None = None
    cls: str = "ok"


async def one_request(
    http: httpx.AsyncClient, gw: procs.Proc, o: Outcome, t0: float, max_tokens: int
) -> None:
    body = {
        "model": "default",
        "messages": [{"role": "user", "content": f"Request {o.k}: write one sentence."}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
        "stream": o.stream,
    }
    headers = {"Authorization": f"Bearer {gw.token}"}
    try:
        async with http.stream(
            "POST", f"{gw.url}/v1/chat/completions", json=body, headers=headers
        ) as res:
            o.status = res.status_code
            if res.status_code != 200:
                o.error = f"HTTP {res.status_code}: {(await res.aread())[:200]!r}"
                return
            if not o.stream:
                data = json.loads(await res.aread())
                o.ok = bool(data.get("choices"))
                o.first_content = time.monotonic() - t0
                if not o.ok:
                    o.error = f"no choices: {str(data)[:200]}"
                return
            done = False
            async for line in res.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    o.error = f"in-band error: {str(event['error'])[:200]}"
                    return
                if o.first_content is None and event.get("choices"):
                    o.first_content = time.monotonic() - t0
            o.ok = done
            if not done:
                o.error = "stream ended without [DONE]"
    except (httpx.HTTPError, json.JSONDecodeError) as error:
        o.error = f"{type(error).__name__}: {error}"[:200]
    finally:
        o.ended = time.monotonic() - t0


def usage_rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT ts, server, status, outcome, errorCode, durationMs, route FROM usage_record "
            "ORDER BY ts"
        ).fetchall()
    return [dict(r) for r in rows]


def classify(
    outcomes: list[Outcome], rows: list[dict[str, Any]], kill_at: float, killed: str
) -> dict[str, Any]:
    """A failure is *in flight on the killed server* when it was sent before the kill and the
    gateway recorded an error for a request placed on that server, started before the kill,
    at about the same time (the usage row's ts is when the gateway received the request;
    each row is matched once); any other failure is *not yet started on it*."""
    kill_epoch_ms = next(
        (o.sent_epoch_ms + (kill_at - o.sent) * 1000 for o in outcomes), float("nan")
    )
    candidates = [
        r
        for r in rows
        if r["server"] == killed and r["outcome"] != "ok" and r["ts"] <= kill_epoch_ms + 5
    ]
    for o in sorted((o for o in outcomes if not o.ok), key=lambda o: o.sent_epoch_ms):
        if o.sent > kill_at:
            o.cls = "not_started_on_killed"
            continue
        match = min(candidates, key=lambda r: abs(r["ts"] - o.sent_epoch_ms), default=None)
        if match is not None and abs(match["ts"] - o.sent_epoch_ms) < 250:
            candidates.remove(match)
            o.cls = "in_flight_on_killed"
        else:
            o.cls = "not_started_on_killed"
    failed = [o for o in outcomes if not o.ok]
    per_server: dict[str, dict[str, int]] = {}
    for r in rows:
        phase = "before_kill" if r["ts"] < kill_epoch_ms else "after_kill"
        key = r["server"] or "(none)"
        per_server.setdefault(key, {"before_kill": 0, "after_kill": 0})[phase] += 1
    after = [o for o in outcomes if o.sent > kill_at]
    return {
        "requests": len(outcomes),
        "ok": len(outcomes) - len(failed),
        "failed": len(failed),
        "in_flight_on_killed": sum(o.cls == "in_flight_on_killed" for o in failed),
        "not_started_on_killed": sum(o.cls == "not_started_on_killed" for o in failed),
        "failed_streams": sum(o.stream for o in failed),
        "failed_json": sum(not o.stream for o in failed),
        "in_flight_at_kill": sum(o.sent <= kill_at < o.ended for o in outcomes),
        "sent_after_kill": len(after),
        "ok_after_kill": sum(o.ok for o in after),
        "usage_rows_per_server": per_server,
        "usage_error_rows_on_killed": sum(
            1 for r in rows if r["server"] == killed and r["outcome"] != "ok"
        ),
        "failures": [asdict(o) for o in failed],
    }


async def failover_bench(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    started: list[procs.Proc] = []
    llm_env = {
        "LLM_N_THREADS": "1",
        "LLM_MAX_RUNNING": str(args.max_running),
        "LLM_N_CTX": "4096",
        "LLM_CONTEXT_LENGTH": "1024",
    }
    try:
        servers = [
            procs.start_llm_server(logs, token, name=f"llm-server-{i}", extra_env=llm_env)
            for i in (1, 2)
        ]
        started.extend(servers)
        gw = procs.start_gateway(
            logs,
            [s.url for s in servers],
            token,
            cache=False,
            name="gateway-failover",
            extra_env={"LLM_HEALTH_INTERVAL_MS": str(args.health_interval_ms)},
        )
        started.append(gw)
        victim = servers[0]
        outcomes: list[Outcome] = []
        t0 = time.monotonic()
        epoch0 = time.time() * 1000
        stop_at = t0 + args.duration
        counter = iter(range(10**9))
        limits = httpx.Limits(max_connections=args.clients * 2)

        async with httpx.AsyncClient(timeout=120, limits=limits) as http:

            async def client(c: int) -> None:
                while time.monotonic() < stop_at:
                    k = next(counter)
                    now = time.monotonic()
                    o = Outcome(k, c, k % 2 == 0, now - t0, epoch0 + (now - t0) * 1000)
                    outcomes.append(o)
                    await one_request(http, gw, o, t0, args.max_tokens)

            async def killer() -> float:
                await asyncio.sleep(args.kill_at)
                at = time.monotonic() - t0
                victim.kill()
                log(f"failover: SIGKILL {victim.name} ({victim.url}) at {at:.2f} s")
                return at

            kill_task = asyncio.create_task(killer())
            await asyncio.gather(*(client(c) for c in range(args.clients)))
            kill_at = await kill_task
        gw.stop()  # flushes; the usage table is read afterwards
        rows = usage_rows(logs / "gateway-failover-data" / "gateway.sqlite")
        out = classify(outcomes, rows, kill_at, victim.url)
        lat_before = [o.ended - o.sent for o in outcomes if o.ok and o.ended < kill_at]
        lat_after = [o.ended - o.sent for o in outcomes if o.ok and o.sent > kill_at]
        out |= {
            "kill_at_s": kill_at,
            "killed": victim.url,
            "survivor": servers[1].url,
            "e2e_p50_before_kill_ms": 1000 * percentile(lat_before, 50),
            "e2e_p50_after_kill_ms": 1000 * percentile(lat_after, 50),
            "loadavg_1m": os.getloadavg()[0],
        }
        log(
            f"failover: {out['requests']} requests, {out['failed']} failed "
            f"({out['in_flight_on_killed']} in flight on the killed server, "
            f"{out['not_started_on_killed']} not started on it)"
        )
        return out
    finally:
        for proc in reversed(started):
            proc.stop()


async def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if "cache" in args.parts:
        data["cache"] = await cache_bench(args, logs)
    if "failover" in args.parts:
        data["failover"] = await failover_bench(args, logs)
    return data


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.gateway_work",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--parts", nargs="+", choices=["cache", "failover"], default=["cache", "failover"]
    )
    p.add_argument("--cache-requests", type=int, default=2000, help="per closed-loop measure")
    p.add_argument("--cache-rate", type=float, default=500, help="open-loop hits/s")
    p.add_argument("--cache-duration", type=float, default=10)
    p.add_argument("--clients", type=int, default=8, help="failover: closed-loop clients")
    p.add_argument("--duration", type=float, default=30, help="failover: seconds of load")
    p.add_argument("--kill-at", type=float, default=10, help="failover: SIGKILL after (s)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-running", type=int, default=4, help="each llm-server's LLM_MAX_RUNNING")
    p.add_argument("--health-interval-ms", type=int, default=500)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    logs = args.out / "logs" / f"gateway-work-{stamp}"
    t0 = time.monotonic()
    data = run_loop(run(args, logs))
    data["settings"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
    } | {
        "command": shlex.join(["python", "-m", "bench.gateway_work", *(argv or sys.argv[1:])]),
        "started": stamp,
        "minutes": (time.monotonic() - t0) / 60,
        "cpus": os.cpu_count(),
        "uptime": Path("/proc/loadavg").read_text().strip(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"gateway-work-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(data, indent=2))
    md = work_markdown(data)
    base.with_suffix(".md").write_text(md)
    for suffix in (".json", ".md"):
        (args.out / f"gateway-work-latest{suffix}").write_text(base.with_suffix(suffix).read_text())
    print(md)
    log(f"wrote {base}.json and .md; logs in {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

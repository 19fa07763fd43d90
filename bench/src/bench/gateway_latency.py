"""`python -m bench.gateway_latency`: the gateway's added latency over calling the upstream
directly, against a stub upstream, with API-key auth on — and LiteLLM's proxy pointed at the
same stub, in the same run.

Targets, all running for the whole run, measured one after another in alternating
rounds: `direct` (the stub itself, with its bearer token), `gateway` (gateway/dist/server.js,
production mode, an API key from `gateway/bin/admin`, limits off, cache off), `gateway-openai`
(the same, with a GATEWAY_MODELS_FILE that declares the stub an external `openai` upstream:
base URL `/v1`, its key from an environment variable, health from `GET /v1/models`) and
`litellm` (`litellm --config`, master key). Non-streamed `/v1/chat/completions` at a fixed open-loop
rate (every request with distinct content); then streams of `--chunks` chunks
`--chunk-interval-ms` apart, at `--stream-rate` new streams per second. Added latency = the
proxy's figure minus `direct`'s, percentile by percentile. JSON and markdown under
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.gw import procs
from bench.gw.httpload import HttpClient, Result, build_request, open_loop
from bench.gw.report import latency_markdown
from bench.gw.stats import added, median_of, ratio, summarize_requests, summarize_streams
from bench.procstats import ProcSampler
from bench.targets import ROOT

T = TypeVar("T")
TARGETS = ("direct", "gateway", "gateway-openai", "litellm")

# The stub as an external OpenAI-compatible upstream; the public name is the stub's own, so
# that this target differs from `gateway` only by the upstream's kind.
OPENAI_ROUTING = """\
[[models]]
name = "stub-model"
[[models.upstreams]]
kind = "openai"
url = "{url}/v1"
model = "stub-model"
api_key_env = "STUB_API_KEY"
"""


@dataclass
class Target:
    name: str
    url: str
    token: str
    model: str
    pids: dict[str, int]  # process name -> pid, for CPU figures

    @property
    def host(self) -> str:
        return self.url.split("//", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def chat(self, content: str, *, stream: bool, max_tokens: int) -> bytes:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "stream": stream,
        }
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        return build_request(
            "POST", self.host, self.port, "/v1/chat/completions", headers, json.dumps(body).encode()
        )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> float:
    return os.getloadavg()[0]


async def _with_cpu(target: Target, run: Any) -> tuple[list[Result], dict[str, float]]:
    samplers = {name: ProcSampler(pid) for name, pid in target.pids.items()}
    for s in samplers.values():
        s.start()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    results: list[Result] = await run
    client_cpu = 100 * (time.process_time() - cpu0) / max(1e-9, time.monotonic() - t0)
    cpu = {f"cpu_{name}_pct": (await s.stop()).cpu_percent for name, s in samplers.items()}
    cpu["cpu_client_pct"] = client_cpu
    return results, cpu


async def measure_requests(
    target: Target, rate: float, duration: float, warmup: float
) -> dict[str, Any]:
    client = HttpClient(target.host, target.port)
    await client.warm(4)
    nonce = secrets.token_hex(4)
    total = int(rate * (duration + warmup)) + 1
    raws = [
        target.chat(f"bench {nonce} {k}: say something", stream=False, max_tokens=16)
        for k in range(total)
    ]

    async def send(k: int, result: Result) -> Result:
        return await client.request(raws[k], result)

    if warmup > 0:
        await open_loop(rate, warmup, send)
    offset = int(rate * warmup)

    async def send_measured(k: int, result: Result) -> Result:
        return await send(offset + k, result)

    load0 = loadavg()
    results, cpu = await _with_cpu(target, open_loop(rate, duration, send_measured))
    client.close()
    return {
        **summarize_requests(results, duration),
        **cpu,
        "client_refused": client.refused,
        "loadavg_1m_before": load0,
        "loadavg_1m_after": loadavg(),
    }


async def measure_streams(
    target: Target, stream_rate: float, duration: float, chunks: int
) -> dict[str, Any]:
    client = HttpClient(target.host, target.port)
    await client.warm(4)
    nonce = secrets.token_hex(4)
    # warm-up: a few streams, not counted
    warm = [target.chat(f"warm {nonce} {k}", stream=True, max_tokens=chunks) for k in range(4)]
    await asyncio.gather(*(client.request(raw, Result()) for raw in warm))
    raws = [
        target.chat(f"stream {nonce} {k}", stream=True, max_tokens=chunks)
        for k in range(int(stream_rate * duration) + 1)
    ]

    async def send(k: int, result: Result) -> Result:
        return await client.request(raws[k], result)

    load0 = loadavg()
    results, cpu = await _with_cpu(target, open_loop(stream_rate, duration, send))
    client.close()
    return {
        **summarize_streams(results, chunks),
        **cpu,
        "loadavg_1m_before": load0,
        "loadavg_1m_after": loadavg(),
    }


REQ_KEYS = ["p50_ms", "p90_ms", "p99_ms"]
STREAM_KEYS = ["chunk_delay_p50_ms", "chunk_delay_p99_ms", "e2e_p50_ms", "first_chunk_p50_ms"]


def derive(medians: dict[str, Any], chunks: int) -> dict[str, Any]:
    """Added latency of each proxy over `direct`, and LiteLLM's added over the gateway's."""
    out: dict[str, Any] = {"requests": {}, "streams": {}}
    for rate, per_target in medians["requests"].items():
        direct = per_target.get("direct")
        if not direct:
            continue
        row = {
            name: added(fig, direct, REQ_KEYS)
            for name, fig in per_target.items()
            if name != "direct"
        }
        if "gateway" in row and "litellm" in row:
            row["litellm_over_gateway"] = {
                k: ratio(row["litellm"][f"added_{k}"], row["gateway"][f"added_{k}"])
                for k in REQ_KEYS
            }
        out["requests"][rate] = row
    per_target = medians["streams"]
    if direct := per_target.get("direct"):
        row = {}
        for name, fig in per_target.items():
            if name == "direct":
                continue
            row[name] = added(fig, direct, STREAM_KEYS)
            row[name]["added_e2e_per_chunk_ms"] = row[name]["added_e2e_p50_ms"] / chunks
        if "gateway" in row and "litellm" in row:
            row["litellm_over_gateway"] = {
                k: ratio(row["litellm"][f"added_{k}"], row["gateway"][f"added_{k}"])
                for k in ("chunk_delay_p50_ms", "chunk_delay_p99_ms", "e2e_per_chunk_ms")
            }
        out["streams"] = row
    return out


async def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    started: list[procs.Proc] = []
    try:
        stub = procs.start_stub(logs, args.chunk_interval_ms)
        started.append(stub)
        targets: dict[str, Target] = {
            "direct": Target("direct", stub.url, stub.token, "stub-model", {"stub": stub.pid})
        }
        if "gateway" in args.targets:
            node_args = ["--cpu-prof", f"--cpu-prof-dir={logs}"] if args.gateway_cpu_prof else []
            gw = procs.start_gateway(logs, [stub.url], stub.token, cache=False, node_args=node_args)
            started.append(gw)
            targets["gateway"] = Target(
                "gateway", gw.url, gw.token, "stub-model", {"gateway": gw.pid, "stub": stub.pid}
            )
        if "gateway-openai" in args.targets:
            routing = logs / "gateway-openai-models.toml"
            routing.parent.mkdir(parents=True, exist_ok=True)
            routing.write_text(OPENAI_ROUTING.format(url=stub.url))
            gwo = procs.start_gateway(
                logs,
                [stub.url],
                stub.token,
                cache=False,
                extra_env={"GATEWAY_MODELS_FILE": str(routing), "STUB_API_KEY": stub.token},
                name="gateway-openai",
            )
            started.append(gwo)
            targets["gateway-openai"] = Target(
                "gateway-openai",
                gwo.url,
                gwo.token,
                "stub-model",
                {"gateway-openai": gwo.pid, "stub": stub.pid},
            )
        if "litellm" in args.targets:
            lite = procs.start_litellm(logs, stub, workers=args.litellm_workers)
            started.append(lite)
            targets["litellm"] = Target(
                "litellm", lite.url, lite.token, "stub", {"litellm": lite.pid, "stub": stub.pid}
            )
        order = [t for t in TARGETS if t in targets]
        log(f"ready: {', '.join(f'{n} {t.url}' for n, t in targets.items())}")
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            this: dict[str, Any] = {"requests": {}, "streams": {}}
            # alternate the order between rounds so that drift falls on every target
            names = order if r % 2 == 0 else order[::-1]
            for rate in args.rates:
                this["requests"][str(rate)] = {}
                for name in names:
                    fig = await measure_requests(targets[name], rate, args.duration, args.warmup)
                    this["requests"][str(rate)][name] = fig
                    log(
                        f"round {r + 1} {rate:g}/s {name}: ok {fig['ok']}/{fig['requests']}, "
                        f"p50 {fig['p50_ms']:.3f} ms, p99 {fig['p99_ms']:.3f} ms, "
                        f"load {fig['loadavg_1m_after']:.2f}"
                    )
            if args.stream_rate > 0:
                for name in names:
                    fig = await measure_streams(
                        targets[name], args.stream_rate, args.stream_duration, args.chunks
                    )
                    this["streams"][name] = fig
                    log(
                        f"round {r + 1} streams {name}: ok {fig['ok']}/{fig['streams']}, "
                        f"chunk delay p50 {fig['chunk_delay_p50_ms']:.3f} ms "
                        f"p99 {fig['chunk_delay_p99_ms']:.3f} ms"
                    )
            rounds.append(this)
        medians: dict[str, Any] = {
            "requests": {
                str(rate): {
                    n: median_of([rd["requests"][str(rate)][n] for rd in rounds]) for n in order
                }
                for rate in args.rates
            },
            "streams": (
                {n: median_of([rd["streams"][n] for rd in rounds]) for n in order}
                if args.stream_rate > 0
                else {}
            ),
        }
        return {"rounds": rounds, "medians": medians, "added": derive(medians, args.chunks)}
    finally:
        for proc in reversed(started):
            proc.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.gateway_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--targets",
        nargs="+",
        choices=TARGETS,
        # gateway-openai on request: `--targets direct gateway gateway-openai`.
        default=["direct", "gateway", "litellm"],
    )
    p.add_argument("--rates", nargs="+", type=float, default=[500, 50], help="requests/s")
    p.add_argument("--duration", type=float, default=15, help="seconds measured per rate")
    p.add_argument("--warmup", type=float, default=2, help="seconds at the rate, not counted")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians")
    p.add_argument("--stream-rate", type=float, default=10, help="new streams/s (0: skip)")
    p.add_argument("--stream-duration", type=float, default=10)
    p.add_argument("--chunks", type=int, default=100, help="content chunks per stream")
    p.add_argument("--chunk-interval-ms", type=float, default=10)
    p.add_argument("--litellm-workers", type=int, default=1)
    p.add_argument(
        "--gateway-cpu-prof",
        action="store_true",
        help="run the gateway under node --cpu-prof (profile in the logs folder)",
    )
    p.add_argument(
        "--gateway-env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the gateway (e.g. LOG_LEVEL=warn), to see what costs what",
    )
    p.add_argument("--quick", action="store_true", help="1 round, 5 s per rate, 5 s of streams")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop when there (it comes with litellm[proxy]): less client CPU per request."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.stream_duration, args.warmup = 1, 5.0, 5.0, 1.0
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    logs = args.out / "logs" / f"gateway-latency-{stamp}"
    t0 = time.monotonic()
    data = run_loop(run(args, logs))
    data["settings"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
    } | {
        "command": shlex.join(["python", "-m", "bench.gateway_latency", *(argv or sys.argv[1:])]),
        "started": stamp,
        "minutes": (time.monotonic() - t0) / 60,
        "cpus": os.cpu_count(),
        "uptime": Path("/proc/loadavg").read_text().strip(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / f"gateway-latency-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(data, indent=2, allow_nan=True))
    md = latency_markdown(data)
    base.with_suffix(".md").write_text(md)
    for suffix in (".json", ".md"):
        (args.out / f"gateway-latency-latest{suffix}").write_text(
            base.with_suffix(suffix).read_text()
        )
    print(md)
    log(f"wrote {base}.json and .md; logs in {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m bench.gateway_latency`: the gateway's added latency over calling the upstream
directly, against a stub upstream, with API-key auth on — and LiteLLM's proxy pointed at the
same stub, in the same run.

Targets, measured one after another in alternating rounds: `direct` (the stub itself, with
its bearer token, up for the whole run), `gateway` (gateway/dist/server.js with the node flags
of its start script, production mode, an API key from `gateway/bin/admin`, limits off, cache
off), `gateway-openai` (the same, with a GATEWAY_MODELS_FILE that declares the stub an
external `openai` upstream: base URL `/v1`, its key from an environment variable, health from
`GET /v1/models`) and `litellm` (`litellm --config`, master key). Every proxy is a fresh
process for each load level, primed with `--prime-requests` before it: no level inherits
another's backlog. Levels: unloaded (requests one at a time), non-streamed
`/v1/chat/completions` at each fixed open-loop rate (every request with distinct content),
then streams of `--chunks` chunks `--chunk-interval-ms` apart, at `--stream-rate` new streams
per second. Added latency = the proxy's figure minus `direct`'s, percentile by percentile.
`--probe`: the gateway's event-loop delay, utilisation and GC pauses per level. JSON and
markdown under bench/results/."""

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
from bench.gw.httpload import HttpClient, Result, build_request, closed_loop, open_loop
from bench.gw.probe import read_lines, window
from bench.gw.report import latency_markdown
from bench.gw.stats import added, median_of, ratio, summarize_requests, summarize_streams
from bench.procstats import ProcSampler
from bench.targets import ROOT

T = TypeVar("T")
PROBE = Path(__file__).parent / "gw" / "loop_probe.mjs"
PROBE_INTERVAL_S = 0.5
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
    probe: Path | None = None  # the event-loop probe's file (Node targets, `--probe`)

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


async def _probe(target: Target, start: float, end: float) -> dict[str, Any]:
    """The target's event loop during [start, end], when it runs the probe."""
    if target.probe is None:
        return {}
    await asyncio.sleep(PROBE_INTERVAL_S + 0.1)  # its last interval written
    return window(read_lines(target.probe), start, end + PROBE_INTERVAL_S, PROBE_INTERVAL_S)


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
    t0 = time.time()
    results, cpu = await _with_cpu(target, open_loop(rate, duration, send_measured))
    client.close()
    return {
        **summarize_requests(results, duration),
        **cpu,
        **await _probe(target, t0, time.time()),
        "client_refused": client.refused,
        "loadavg_1m_before": load0,
        "loadavg_1m_after": loadavg(),
    }


async def prime(target: Target, count: int) -> None:
    """`count` requests, 4 at a time, not counted: a fresh process's code paths compiled and
    its connections to the stub opened before a level is measured."""
    client = HttpClient(target.host, target.port)
    nonce = secrets.token_hex(4)
    raws = [target.chat(f"prime {nonce} {k}", stream=False, max_tokens=16) for k in range(count)]

    async def send(k: int, result: Result) -> Result:
        return await client.request(raws[k], result)

    await closed_loop(4, count, send)
    client.close()


async def measure_unloaded(target: Target, count: int, warmup: int) -> dict[str, Any]:
    """`count` requests one at a time (each sent when the last one ended), after `warmup`
    more: what the proxy adds when nothing else is in flight."""
    client = HttpClient(target.host, target.port)
    await client.warm(1)
    nonce = secrets.token_hex(4)
    raws = [
        target.chat(f"unloaded {nonce} {k}: say something", stream=False, max_tokens=16)
        for k in range(warmup + count)
    ]

    async def send(k: int, result: Result) -> Result:
        return await client.request(raws[k], result)

    await closed_loop(1, warmup, send)

    async def send_measured(k: int, result: Result) -> Result:
        return await send(warmup + k, result)

    load0, t0, m0 = loadavg(), time.time(), time.monotonic()
    results, cpu = await _with_cpu(target, closed_loop(1, count, send_measured))
    elapsed = time.monotonic() - m0
    client.close()
    return {
        **summarize_requests(results, elapsed),
        **cpu,
        **await _probe(target, t0, time.time()),
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
    t0 = time.time()
    results, cpu = await _with_cpu(target, open_loop(stream_rate, duration, send))
    client.close()
    return {
        **summarize_streams(results, chunks),
        **cpu,
        **await _probe(target, t0, time.time()),
        "loadavg_1m_before": load0,
        "loadavg_1m_after": loadavg(),
    }


REQ_KEYS = ["p50_ms", "p90_ms", "p99_ms"]
STREAM_KEYS = ["chunk_delay_p50_ms", "chunk_delay_p99_ms", "e2e_p50_ms", "first_chunk_p50_ms"]


def _added_row(per_target: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Each proxy's figures minus direct's, and LiteLLM's added over the gateway's (empty
    without `direct`)."""
    direct = per_target.get("direct")
    if not direct:
        return {}
    row: dict[str, Any] = {
        name: added(fig, direct, keys) for name, fig in per_target.items() if name != "direct"
    }
    if "gateway" in row and "litellm" in row:
        row["litellm_over_gateway"] = {
            k: ratio(row["litellm"][f"added_{k}"], row["gateway"][f"added_{k}"]) for k in keys
        }
    return row


def derive(medians: dict[str, Any], chunks: int) -> dict[str, Any]:
    """Added latency of each proxy over `direct` (unloaded, per rate, per stream chunk), and
    LiteLLM's added over the gateway's."""
    out: dict[str, Any] = {
        "unloaded": _added_row(medians.get("unloaded", {}), REQ_KEYS),
        "requests": {},
        "streams": _added_row(medians["streams"], STREAM_KEYS),
    }
    for rate, per_target in medians["requests"].items():
        if row := _added_row(per_target, REQ_KEYS):
            out["requests"][rate] = row
    for name, row in out["streams"].items():
        if name != "litellm_over_gateway":
            row["added_e2e_per_chunk_ms"] = row["added_e2e_p50_ms"] / chunks
    if ratios := out["streams"].get("litellm_over_gateway"):
        lite, gw = out["streams"]["litellm"], out["streams"]["gateway"]
        ratios["e2e_per_chunk_ms"] = ratio(
            lite["added_e2e_per_chunk_ms"], gw["added_e2e_per_chunk_ms"]
        )
    return out


def gateway_launch(
    args: argparse.Namespace, logs: Path, name: str
) -> tuple[list[str], dict[str, str], Path | None]:
    """Node flags, environment and probe file of a gateway process."""
    node_args = list(args.gateway_node_args)
    env = dict(kv.split("=", 1) for kv in args.gateway_env)
    if args.gateway_cpu_prof:
        node_args += ["--cpu-prof", f"--cpu-prof-dir={logs}"]
    probe = None
    if args.probe:
        probe = logs / f"{name}-probe.jsonl"
        node_args += ["--import", PROBE.as_uri()]
        env["LOOP_PROBE_FILE"] = str(probe)
    return node_args, env, probe


class Launcher:
    """Starts each proxy target afresh for every load level (and stops it after), so that no
    level inherits another's backlog, heap or warm caches: LiteLLM, overloaded at 500/s,
    would otherwise still be draining its queue when 50/s begins. `direct` is the stub
    itself, up for the whole run."""

    def __init__(self, args: argparse.Namespace, logs: Path, stub: procs.Proc) -> None:
        self.args, self.logs, self.stub = args, logs, stub
        self.direct = Target("direct", stub.url, stub.token, "stub-model", {"stub": stub.pid})
        self.running: list[procs.Proc] = []

    def start(self, name: str, level: str) -> Target:
        """`name` ready to measure; its process is new (`level` names its logs)."""
        if name == "direct":
            return self.direct
        stub, tag = self.stub, f"{name}-{level}"
        pids = {"stub": stub.pid}
        if name == "litellm":
            lite = procs.start_litellm(self.logs, stub, self.args.litellm_workers, name=tag)
            self.running.append(lite)
            return Target(name, lite.url, lite.token, "stub", {name: lite.pid, **pids})
        node_args, env, probe = gateway_launch(self.args, self.logs, tag)
        if name == "gateway-openai":
            routing = self.logs / "gateway-openai-models.toml"
            routing.parent.mkdir(parents=True, exist_ok=True)
            routing.write_text(OPENAI_ROUTING.format(url=stub.url))
            env |= {"GATEWAY_MODELS_FILE": str(routing), "STUB_API_KEY": stub.token}
        gw = procs.start_gateway(
            self.logs,
            [stub.url],
            stub.token,
            cache=False,
            extra_env=env,
            name=tag,
            node_args=node_args,
            gateway_dir=self.args.gateway_dir,
        )
        self.running.append(gw)
        return Target(name, gw.url, gw.token, "stub-model", {name: gw.pid, **pids}, probe)

    def stop(self) -> None:
        """Stops every proxy process started so far."""
        while self.running:
            self.running.pop().stop()


async def measure_level(args: argparse.Namespace, target: Target, level: str) -> dict[str, Any]:
    """One target at one load level: `unloaded`, `streams`, or a rate."""
    if level == "unloaded":
        return await measure_unloaded(target, args.unloaded_requests, args.unloaded_warmup)
    if level == "streams":
        return await measure_streams(target, args.stream_rate, args.stream_duration, args.chunks)
    return await measure_requests(target, float(level), args.duration, args.warmup)


def describe(level: str, name: str, fig: dict[str, Any]) -> str:
    if level == "streams":
        return (
            f"streams {name}: ok {fig['ok']}/{fig['streams']}, "
            f"chunk delay p50 {fig['chunk_delay_p50_ms']:.3f} ms "
            f"p99 {fig['chunk_delay_p99_ms']:.3f} ms"
        )
    head = "unloaded" if level == "unloaded" else f"{float(level):g}/s"
    return (
        f"{head} {name}: ok {fig['ok']}/{fig['requests']}, p50 {fig['p50_ms']:.3f} ms, "
        f"p99 {fig['p99_ms']:.3f} ms, load {fig['loadavg_1m_after']:.2f}"
    )


def levels(args: argparse.Namespace) -> list[str]:
    """The load levels of a round, in order: unloaded, each rate, streams."""
    out = ["unloaded"] if args.unloaded_requests > 0 else []
    out += [f"{float(rate):g}" for rate in args.rates]
    return out + (["streams"] if args.stream_rate > 0 else [])


async def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    stub = procs.start_stub(logs, args.chunk_interval_ms)
    launcher = Launcher(args, logs, stub)
    try:
        order = [t for t in TARGETS if t in args.targets or t == "direct"]
        log(f"stub {stub.url}; targets {', '.join(order)}, each proxy fresh per load level")
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            this: dict[str, Any] = {"unloaded": {}, "requests": {}, "streams": {}}
            # alternate the order between rounds so that drift falls on every target
            names = order if r % 2 == 0 else order[::-1]
            for level in levels(args):
                for name in names:
                    target = launcher.start(name, f"r{r + 1}-{level}")
                    try:
                        await prime(target, args.prime_requests)
                        fig = await measure_level(args, target, level)
                    finally:
                        launcher.stop()
                    if level in ("unloaded", "streams"):
                        this[level][name] = fig
                    else:
                        this["requests"].setdefault(level, {})[name] = fig
                    log(f"round {r + 1} {describe(level, name, fig)}")
            rounds.append(this)
        med = medians(rounds, order)
        return {"rounds": rounds, "medians": med, "added": derive(med, args.chunks)}
    finally:
        launcher.stop()
        stub.stop()


def medians(rounds: list[dict[str, Any]], order: list[str]) -> dict[str, Any]:
    """Per level and target, the median of each figure over the rounds."""

    def over(pick: Any) -> dict[str, Any]:
        return {n: median_of([pick(rd)[n] for rd in rounds]) for n in order if n in pick(rounds[0])}

    return {
        "unloaded": over(lambda rd: rd["unloaded"]),
        "requests": {
            rate: over(lambda rd, rate=rate: rd["requests"][rate]) for rate in rounds[0]["requests"]
        },
        "streams": over(lambda rd: rd["streams"]),
    }


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
    p.add_argument(
        "--unloaded-requests",
        type=int,
        default=200,
        help="requests one at a time, per target and round, for the unloaded row (0: skip)",
    )
    p.add_argument("--unloaded-warmup", type=int, default=50, help="not counted")
    p.add_argument(
        "--prime-requests",
        type=int,
        default=300,
        help="requests (4 at a time, not counted) to every fresh target before each level",
    )
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
    p.add_argument(
        "--gateway-node-arg",
        action="append",
        default=[],
        dest="gateway_node_args",
        metavar="FLAG",
        help="a node flag for the gateway, repeatable: --gateway-node-arg=--trace-gc",
    )
    p.add_argument(
        "--gateway-dir",
        type=Path,
        default=procs.GATEWAY,
        help="the gateway folder to run (built; e.g. an older commit's, for a before/after)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="event-loop delay, utilisation and GC pauses of the gateway per measurement",
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

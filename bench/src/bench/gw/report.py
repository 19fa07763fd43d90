"""Markdown tables for the gateway benchmarks."""

from __future__ import annotations

from typing import Any

from bench.gw.stats import fmt

# The targets for the gateway.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_CHUNK_MS = 0.5
TARGET_RATIO = 5.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _proxy_cpu(name: str, fig: dict[str, Any]) -> Any:
    """The proxy's CPU % in a row ("–" for `direct`, which has none)."""
    return fig.get(f"cpu_{name}_pct", float("nan")) if name != "direct" else "–"


def _level(level: str) -> str:
    return "no load" if level == "unloaded" else f"{float(level):g}/s"


def _unloaded(data: dict[str, Any]) -> list[str]:
    """The unloaded table: sequential requests, what each proxy adds when idle."""
    per_target = data["medians"].get("unloaded") or {}
    if not per_target:
        return []
    s, add = data["settings"], data["added"].get("unloaded", {})
    lines = [
        f"## Unloaded: {s['unloaded_requests']} requests one at a time "
        f"(after {s['unloaded_warmup']} not counted)",
        "",
        "| target | ok / sent | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms | "
        "proxy CPU % | load 1m |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in per_target.items():
        a = add.get(name, {})
        proxy_cpu = _proxy_cpu(name, f)
        lines.append(
            f"| {name} | {fmt(f['ok'], 0)} / {fmt(f['requests'], 0)} | {fmt(f['p50_ms'], 3)} | "
            f"{fmt(f['p90_ms'], 3)} | {fmt(f['p99_ms'], 3)} | "
            f"{fmt(a.get('added_p50_ms', '–'), 3)} | {fmt(a.get('added_p99_ms', '–'), 3)} | "
            f"{fmt(proxy_cpu, 0)} | {fmt(f['loadavg_1m_after'], 2)} |"
        )
    return [*lines, ""]


LOOP_KEYS = ("elu_pct", "loop_delay_p99_ms", "loop_delay_max_ms", "gc_per_s", "gc_pause_p99_ms")


def _loop_table(data: dict[str, Any]) -> list[str]:
    """The probed proxies' event loops per level (`--probe`), when there are any."""
    med = data["medians"]
    levels = {"unloaded": med.get("unloaded") or {}, **med["requests"], "streams": med["streams"]}
    rows = [
        (level, name, f)
        for level, per_target in levels.items()
        for name, f in per_target.items()
        if "elu_pct" in f
    ]
    if not rows:
        return []
    lines = [
        "",
        "## The proxy's event loop (`--probe`)",
        "",
        "Loop delay = how late a 10 ms timer fired (blocked loop or a descheduled process); "
        "GC pauses from `perf_hooks`.",
        "",
        "| load | target | loop busy % | loop delay p99 ms | loop delay max ms | GC/s | "
        "GC pause p99 ms | GC pause max ms | GC ms/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, name, f in rows:
        label = "streams" if level == "streams" else _level(level)
        lines.append(
            f"| {label} | {name} | "
            + " | ".join(fmt(f[k], 1 if k == "elu_pct" else 2) for k in LOOP_KEYS)
            + f" | {fmt(f['gc_pause_max_ms'], 2)} | {fmt(f['gc_ms_per_s'], 2)} |"
        )
    return lines


def latency_markdown(data: dict[str, Any]) -> str:
    s = data["settings"]
    med, add = data["medians"], data["added"]
    lines = [
        f"# Gateway added latency — {s['started']}",
        "",
        f"`{s['command']}` — {s['rounds']} round(s), {s['duration']:g} s per rate, "
        f"{s['minutes']:.1f} min, {s['cpus']} CPUs, /proc/loadavg at the end: `{s['uptime']}`. "
        "Medians over rounds. Latency = request written → last byte read, client-side.",
        "",
        "Each proxy runs as a fresh process for every load level (started before it, stopped "
        "after it), so no level inherits another's backlog.",
        "",
        *_unloaded(data),
        "## Non-streamed `/v1/chat/completions`, open loop",
        "",
        "| rate/s | target | ok / sent | achieved/s | p50 ms | p90 ms | p99 ms | added p50 ms "
        "| added p99 ms | proxy CPU % | stub CPU % | client CPU % | send lag p99 ms | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate, per_target in med["requests"].items():
        for name, f in per_target.items():
            a = add["requests"].get(rate, {}).get(name, {})
            proxy_cpu = _proxy_cpu(name, f)
            lines.append(
                f"| {float(rate):g} | {name} | {fmt(f['ok'], 0)} / {fmt(f['requests'], 0)} | "
                f"{fmt(f['achieved_rps'], 0)} | {fmt(f['p50_ms'], 3)} | {fmt(f['p90_ms'], 3)} | "
                f"{fmt(f['p99_ms'], 3)} | {fmt(a.get('added_p50_ms', '–'), 3)} | "
                f"{fmt(a.get('added_p99_ms', '–'), 3)} | {fmt(proxy_cpu, 0)} | "
                f"{fmt(f.get('cpu_stub_pct', float('nan')), 0)} | "
                f"{fmt(f['cpu_client_pct'], 0)} | {fmt(f['send_lag_p99_ms'], 2)} | "
                f"{fmt(f['loadavg_1m_after'], 2)} |"
            )
    if med["streams"]:
        st = add["streams"]
        lines += [
            "",
            f"## Streams: {s['chunks']} chunks {s['chunk_interval_ms']:g} ms apart, "
            f"{s['stream_rate']:g} new streams/s for {s['stream_duration']:g} s",
            "",
            "Chunk delay = the chunk's arrival at the client − the stub's send time stamped in it "
            "(CLOCK_MONOTONIC on both sides). Added per chunk = the proxy's chunk delay − "
            "direct's; e2e/chunk = (e2e p50 − direct's e2e p50) / chunks.",
            "",
            "| target | ok / streams | chunk delay p50 ms | chunk delay p99 ms | added p50 ms | "
            "added p99 ms | e2e/chunk added ms | first chunk p50 ms | proxy CPU % | load 1m |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, f in med["streams"].items():
            a = st.get(name, {})
            proxy_cpu = _proxy_cpu(name, f)
            lines.append(
                f"| {name} | {fmt(f['ok'], 0)} / {fmt(f['streams'], 0)} | "
                f"{fmt(f['chunk_delay_p50_ms'], 3)} | {fmt(f['chunk_delay_p99_ms'], 3)} | "
                f"{fmt(a.get('added_chunk_delay_p50_ms', '–'), 3)} | "
                f"{fmt(a.get('added_chunk_delay_p99_ms', '–'), 3)} | "
                f"{fmt(a.get('added_e2e_per_chunk_ms', '–'), 4)} | "
                f"{fmt(f['first_chunk_p50_ms'], 3)} | {fmt(proxy_cpu, 0)} | "
                f"{fmt(f['loadavg_1m_after'], 2)} |"
            )
    lines += _loop_table(data)
    lines += ["", "## Against the issue's targets", "", "| target | measured | verdict |"]
    lines.append("|---|---|---|")
    rows = {"unloaded": add.get("unloaded", {}), **add["requests"]}
    for rate, row in rows.items():
        g = row.get("gateway")
        if g:
            lines.append(
                f"| gateway added p50 ≤ {TARGET_P50_MS:g} ms at {_level(rate)} | "
                f"{fmt(g['added_p50_ms'], 3)} ms | {_verdict(g['added_p50_ms'] <= TARGET_P50_MS)} |"
            )
            lines.append(
                f"| gateway added p99 ≤ {TARGET_P99_MS:g} ms at {_level(rate)} | "
                f"{fmt(g['added_p99_ms'], 3)} ms | {_verdict(g['added_p99_ms'] <= TARGET_P99_MS)} |"
            )
        r = row.get("litellm_over_gateway")
        if r:
            for k in ("p50_ms", "p99_ms"):
                lines.append(
                    f"| LiteLLM added / gateway added ≥ {TARGET_RATIO:g} ({k[:3]}, "
                    f"{_level(rate)}) | {fmt(r[k], 1)} | {_verdict(r[k] >= TARGET_RATIO)} |"
                )
    g = add["streams"].get("gateway") if add["streams"] else None
    if g:
        for k, label in (
            ("added_chunk_delay_p50_ms", "p50"),
            ("added_chunk_delay_p99_ms", "p99"),
            ("added_e2e_per_chunk_ms", "e2e/chunk"),
        ):
            lines.append(
                f"| gateway added per SSE chunk ({label}) ≤ {TARGET_CHUNK_MS:g} ms | "
                f"{fmt(g[k], 3)} ms | {_verdict(g[k] <= TARGET_CHUNK_MS)} |"
            )
        r = add["streams"].get("litellm_over_gateway")
        if r:
            lines.append(
                f"| LiteLLM / gateway, added per chunk (p50) ≥ {TARGET_RATIO:g} | "
                f"{fmt(r['chunk_delay_p50_ms'], 1)} | "
                f"{_verdict(r['chunk_delay_p50_ms'] >= TARGET_RATIO)} |"
            )
    return "\n".join(lines) + "\n"


CACHE_TARGET_P50_MS = 2.0


def work_markdown(data: dict[str, Any]) -> str:
    s = data["settings"]
    lines = [
        f"# Gateway at work — {s['started']}",
        "",
        f"`{s['command']}` — {s['minutes']:.1f} min, {s['cpus']} CPUs, /proc/loadavg at the end: "
        f"`{s['uptime']}`.",
    ]
    if cache := data.get("cache"):
        first = cache["first_request"]
        lines += [
            "",
            "## Cache hits (one llm-server, the embedded model, temperature 0, max_tokens 16)",
            "",
            f"First request: X-Cache {first['x_cache']}, {first['latency_ms']:.1f} ms. Then "
            "identical requests; latency = request written → last byte (streams: through "
            "`[DONE]`), counted only for answers with `X-Cache: HIT`.",
            "",
            "| load | answer | hits / requests | p50 ms | p90 ms | p99 ms | max ms | "
            "first byte p50 ms | load 1m |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rate = f"{cache['cache_rate']:g}/s open loop"
        for key, load, kind in (
            ("json_c1", "1 client, closed loop", "JSON"),
            ("stream_c1", "1 client, closed loop", "SSE"),
            ("json_rate", rate, "JSON"),
            ("stream_rate", rate, "SSE"),
        ):
            f = cache[key]
            lines.append(
                f"| {load} | {kind} | {f['hits']} / {f['requests']} | {fmt(f['p50_ms'], 3)} | "
                f"{fmt(f['p90_ms'], 3)} | {fmt(f['p99_ms'], 3)} | {fmt(f['max_ms'], 2)} | "
                f"{fmt(f['first_byte_p50_ms'], 3)} | {fmt(f['loadavg_1m'], 2)} |"
            )
        worst = max(
            cache[k]["p50_ms"] for k in ("json_c1", "stream_c1", "json_rate", "stream_rate")
        )
        lines += [
            "",
            f"Target: a cache hit answered with p50 ≤ {CACHE_TARGET_P50_MS:g} ms — the worst p50 "
            f"above: {fmt(worst, 3)} ms, "
            f"{_verdict(worst <= CACHE_TARGET_P50_MS)}.",
        ]
    if fo := data.get("failover"):
        lines += [
            "",
            f"## Failover: two llm-servers, {s['clients']} closed-loop clients, "
            f"max_tokens {s['max_tokens']}, one SIGKILLed at {fo['kill_at_s']:.1f} s of "
            f"{s['duration']:g} s",
            "",
            "| requests | ok | failed | in flight on the killed server (allowed) | "
            "not yet started on it (must be 0) | in flight at the kill | sent after the kill "
            "(ok) | e2e p50 before / after ms |",
            "|---|---|---|---|---|---|---|---|",
            f"| {fo['requests']} | {fo['ok']} | {fo['failed']} | {fo['in_flight_on_killed']} | "
            f"{fo['not_started_on_killed']} | {fo['in_flight_at_kill']} | "
            f"{fo['sent_after_kill']} ({fo['ok_after_kill']}) | "
            f"{fmt(fo['e2e_p50_before_kill_ms'], 0)} / {fmt(fo['e2e_p50_after_kill_ms'], 0)} |",
            "",
            "Usage rows per server (gateway's table): "
            + ", ".join(
                f"`{srv}` {c['before_kill']} before / {c['after_kill']} after"
                for srv, c in fo["usage_rows_per_server"].items()
            )
            + f"; error rows on the killed server: {fo['usage_error_rows_on_killed']}.",
            "",
            f"Target: zero failed requests among those not yet started on the killed server: "
            f"{_verdict(fo['not_started_on_killed'] == 0)}.",
        ]
        if fo["failures"]:
            lines += ["", "| failed request | stream | sent s | ended s | class | error |"]
            lines.append("|---|---|---|---|---|---|")
            for o in fo["failures"][:20]:
                lines.append(
                    f"| {o['k']} | {o['stream']} | {o['sent']:.2f} | {o['ended']:.2f} | "
                    f"{o['cls']} | {str(o['error'])[:80].replace('|', '/')} |"
                )
    return "\n".join(lines) + "\n"

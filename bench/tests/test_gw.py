"""Pure pieces of the gateway benchmarks: the HTTP response parser, percentiles, figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.gateway_latency import derive
from bench.gw.httpload import ResponseParser, Result, build_request
from bench.gw.stats import median_of, percentile, ratio, summarize_requests


def feed_bytewise(raw: bytes) -> ResponseParser:
    p = ResponseParser()
    for i in range(len(raw)):
        done = p.feed(raw[i : i + 1], now=i)
        assert done == (i == len(raw) - 1), i
    return p


def test_content_length_body_any_split() -> None:
    raw = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
    p = feed_bytewise(raw)
    assert p.status == 200
    assert bytes(p.body) == b'{"a":1}'
    assert p.keep_alive


def test_chunked_sse_events_with_arrival_times() -> None:
    events = [b"data: one\n\n", b'data: {"x": 2}\n\ndata: [DONE]\n\n']
    body = b"".join(f"{len(e):x}\r\n".encode() + e + b"\r\n" for e in events) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    raw = head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body
    p = feed_bytewise(raw)
    assert [data for _, data in p.events] == [b"one", b'{"x": 2}', b"[DONE]"]
    # each event is timed by the byte that completed it
    times = [t for t, _ in p.events]
    assert times == sorted(set(times))
    assert not p.keep_alive


def test_chunked_in_one_piece() -> None:
    raw = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    p = ResponseParser()
    assert p.feed(raw, now=5)
    assert p.status == 502 and bytes(p.body) == b"abc"


def test_stamped_delays_read_both_json_spacings() -> None:
    r = Result(
        events=[
            (1_500_000, b'{"choices":[{"delta":{"content":"t1000000;"}}]}'),
            (4_000_000, b'{"choices": [{"delta": {"content": "t2000000;"}}]}'),
            (5_000_000, b"[DONE]"),
        ]
    )
    assert r.stamped_delays_ms() == [0.5, 2.0]
    assert r.saw_done


def test_build_request_has_length() -> None:
    raw = build_request("POST", "127.0.0.1", 80, "/v1/x", {"A": "b"}, b"{}")
    assert raw.endswith(b"Content-Length: 2\r\n\r\n{}")
    assert raw.startswith(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n")


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_summarize_requests_latency_and_errors() -> None:
    ok = [Result(intended=0, sent=i, done=i + 1_000_000, status=200) for i in range(10)]
    bad = [Result(intended=0, sent=1, done=2, status=503)]
    s = summarize_requests(ok + bad, duration=2.0)
    assert s["ok"] == 10 and s["errors"] == 1
    assert s["p50_ms"] == 1.0 and s["achieved_rps"] == 5.0
    assert s["first_error"].startswith("HTTP 503")


def test_median_of_rounds_and_ratio() -> None:
    m = median_of([{"a": 1.0, "n": "x"}, {"a": 3.0, "n": "y"}, {"a": float("nan"), "n": "z"}])
    assert m == {"a": 2.0, "n": "x"}
    assert ratio(10, 2) == 5
    assert ratio(1, 0) == math.inf
    assert math.isnan(ratio(float("nan"), 1))


def test_derive_added_and_ratio() -> None:
    fig = {"p50_ms": 0.1, "p90_ms": 0.2, "p99_ms": 1.0}
    medians = {
        "requests": {
            "500": {
                "direct": fig,
                "gateway": {"p50_ms": 0.6, "p90_ms": 0.7, "p99_ms": 3.0},
                "litellm": {"p50_ms": 5.1, "p90_ms": 8.2, "p99_ms": 21.0},
            }
        },
        "streams": {},
    }
    out = derive(medians, chunks=100)
    gw = out["requests"]["500"]["gateway"]
    assert math.isclose(gw["added_p50_ms"], 0.5) and math.isclose(gw["added_p99_ms"], 2.0)
    assert math.isclose(out["requests"]["500"]["litellm_over_gateway"]["p50_ms"], 10.0)


def test_classify_failures_against_usage_rows() -> None:
    from bench.gateway_work import Outcome, classify

    killed, other = "http://k", "http://o"
    # run starts at epoch 1_000_000 ms; the kill at 10 s
    o_ok = Outcome(0, 0, True, 1.0, 1_001_000.0, ended=2.0, ok=True)
    o_inflight = Outcome(1, 1, True, 9.0, 1_009_000.0, ended=10.1)
    o_not_placed = Outcome(2, 2, False, 9.5, 1_009_500.0, ended=10.2)
    o_after = Outcome(3, 3, False, 11.0, 1_011_000.0, ended=11.5)
    rows = [
        {"ts": 1_001_001, "server": other, "outcome": "ok"},
        {"ts": 1_009_002, "server": killed, "outcome": "error"},
        {"ts": 1_009_501, "server": None, "outcome": "error"},
        {"ts": 1_011_001, "server": other, "outcome": "error"},
    ]
    out = classify([o_ok, o_inflight, o_not_placed, o_after], rows, 10.0, killed)
    assert out["failed"] == 3
    assert out["in_flight_on_killed"] == 1
    assert out["not_started_on_killed"] == 2
    assert out["in_flight_at_kill"] == 2
    assert out["usage_rows_per_server"][other] == {"before_kill": 1, "after_kill": 1}


def test_derive_unloaded_row_and_stream_ratios() -> None:
    direct = {"p50_ms": 0.1, "p90_ms": 0.2, "p99_ms": 0.5}
    stream = {"chunk_delay_p50_ms": 0.05, "chunk_delay_p99_ms": 0.2, "e2e_p50_ms": 1000.0}
    stream |= {"first_chunk_p50_ms": 0.3}
    medians = {
        "unloaded": {
            "direct": direct,
            "gateway": {"p50_ms": 0.6, "p90_ms": 0.8, "p99_ms": 1.5},
            "litellm": {"p50_ms": 10.1, "p90_ms": 12.2, "p99_ms": 20.5},
        },
        "requests": {},
        "streams": {
            "direct": stream,
            "gateway": {k: v + 0.1 for k, v in stream.items()},
            "litellm": {k: v + 2.0 for k, v in stream.items()},
        },
    }
    out = derive(medians, chunks=100)
    assert math.isclose(out["unloaded"]["gateway"]["added_p99_ms"], 1.0)
    assert math.isclose(out["unloaded"]["litellm_over_gateway"]["p50_ms"], 20.0)
    gw = out["streams"]["gateway"]
    assert math.isclose(gw["added_e2e_per_chunk_ms"], 0.001)
    ratios = out["streams"]["litellm_over_gateway"]
    assert math.isclose(ratios["chunk_delay_p50_ms"], 20.0)
    assert math.isclose(ratios["e2e_per_chunk_ms"], 20.0)
    # no direct figures: nothing to subtract from
    assert derive({"requests": {"50": {"gateway": direct}}, "streams": {}}, 1)["requests"] == {}


def test_levels_in_order_and_skippable() -> None:
    from bench.gateway_latency import levels, parser

    args = parser().parse_args(["--rates", "500", "50"])
    assert levels(args) == ["unloaded", "500", "50", "streams"]
    args = parser().parse_args(["--unloaded-requests", "0", "--stream-rate", "0"])
    assert levels(args) == ["500", "50"]
    args = parser().parse_args(["--gateway-node-arg=--trace-gc", "--gateway-node-arg=--x=1"])
    assert args.gateway_node_args == ["--trace-gc", "--x=1"]


def test_probe_window_cuts_by_time(tmp_path: Path) -> None:
    from bench.gw.probe import read_lines, window

    def line(t: float, elu: float, p99: float, gc: list[list[Any]]) -> str:
        fig = {"t": t, "elu": elu, "delay_p99_ms": p99, "delay_max_ms": p99 + 1, "gc": gc}
        return json.dumps(fig)

    path = tmp_path / "probe.jsonl"
    path.write_text(
        "\n".join(
            [
                line(100.5, 0.9, 50.0, [["minor", 30.0]]),  # before the window
                line(101.0, 0.2, 10.5, [["minor", 2.0], ["major", 8.0]]),
                line(101.5, 0.4, 11.5, [["minor", 4.0]]),
                line(102.0, 0.3, 12.5, []),
            ]
        )
        + '\n{"t": 103'  # cut mid-write
    )
    lines = read_lines(path)
    assert len(lines) == 4
    w = window(lines, 100.5, 102.0)
    assert math.isclose(w["elu_pct"], 30.0)
    assert w["loop_delay_p99_ms"] == 11.5 and w["loop_delay_max_ms"] == 13.5
    assert w["gc_total"] == 3 and w["gc_minor"] == 2
    # rates over the probe's intervals that the window covers (3 of 0.5 s)
    assert w["gc_pause_max_ms"] == 8.0 and math.isclose(w["gc_ms_per_s"], 14 / 1.5)
    assert math.isclose(window(lines, 101.4, 101.6)["gc_per_s"], 1 / 0.5)
    assert window(lines, 200, 300) == {}
    assert read_lines(tmp_path / "none.jsonl") == []


def test_report_has_unloaded_and_loop_tables() -> None:
    from bench.gw.report import latency_markdown

    req = {"ok": 10, "requests": 10, "achieved_rps": 1.0, "p50_ms": 0.2, "p90_ms": 0.3}
    req |= {"p99_ms": 0.5, "cpu_client_pct": 1.0, "send_lag_p99_ms": 0.0}
    req |= {"loadavg_1m_after": 0.5, "cpu_stub_pct": 1.0}
    probed = req | {"cpu_gateway_pct": 5.0, "elu_pct": 12.0, "loop_delay_p99_ms": 10.4}
    probed |= {"loop_delay_max_ms": 11.0, "gc_per_s": 2.0, "gc_pause_p99_ms": 1.2}
    probed |= {"gc_pause_max_ms": 1.5, "gc_ms_per_s": 2.4}
    medians = {
        "unloaded": {"direct": req, "gateway": probed},
        "requests": {"50.0": {"direct": req, "gateway": probed}},
        "streams": {},
    }
    settings = {"started": "x", "command": "c", "rounds": 1, "duration": 5.0, "minutes": 1.0}
    settings |= {"cpus": 2, "uptime": "u", "unloaded_requests": 10, "unloaded_warmup": 2}
    data = {"settings": settings, "medians": medians, "added": derive(medians, 1)}
    md = latency_markdown(data)
    assert "## Unloaded: 10 requests one at a time (after 2 not counted)" in md
    assert "| gateway | 10 / 10 | 0.200 | 0.300 | 0.500 | 0.000 | 0.000 | 5 | 0.50 |" in md
    assert "| no load | gateway | 12.0 | 10.40 |" in md
    assert "| 50/s | gateway | 12.0 |" in md
    assert "gateway added p99 ≤ 5 ms at no load | 0.000 ms | met |" in md


def test_gateway_start_flags_from_package_json(tmp_path: Path) -> None:
    from bench.gw.procs import gateway_start_flags

    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps({"scripts": {"start": "node --a=1 --b dist/server.js"}}))
    assert gateway_start_flags(pkg) == ["--a=1", "--b"]
    pkg.write_text(json.dumps({"scripts": {"start": "node dist/server.js"}}))
    assert gateway_start_flags(pkg) == []
    pkg.write_text(json.dumps({"scripts": {"start": "tsx src/server.ts"}}))
    with pytest.raises(RuntimeError, match="not `node"):
        gateway_start_flags(pkg)
    assert isinstance(gateway_start_flags(), list)  # the real one parses

"""Pure pieces of the gateway benchmarks: the HTTP response parser, percentiles, figures."""

from __future__ import annotations

import math

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

from __future__ import annotations

import json
import logging

import httpx
import pytest

from llm_server.observability.logging import JsonFormatter
from tests.conftest import AUTH
from tests.fakes import FakeEngine, used_prefix_cache


async def test_metrics_count_requests_tokens_and_latency(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/chat/completions", headers=AUTH, json={"messages": [{"role": "user", "content": "hi"}]}
    )
    await client.get("/v1/models")  # 401, counted too
    text = (await client.get("/metrics", headers=AUTH)).text
    assert 'llm_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'status="401"' in text
    assert "llm_completion_tokens_total 5.0" in text
    assert "llm_time_to_first_token_seconds_count 1.0" in text
    assert "llm_inter_token_seconds_count 4.0" in text
    for name in (
        "llm_queue_depth",
        "llm_running_sequences",
        "llm_model_load_seconds",
        "llm_prompt_tokens_total",
    ):
        assert name in text


async def test_metrics_export_the_engine_guessed_and_confirmed_tokens(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.drafted, engine.accepted = 12, 7
    text = (await client.get("/metrics", headers=AUTH)).text
    assert "llm_draft_tokens_total 12.0" in text
    assert "llm_draft_tokens_accepted_total 7.0" in text


async def test_metrics_export_the_host_prefix_cache(
    client: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.prefix_cache = used_prefix_cache()
    text = (await client.get("/metrics", headers=AUTH)).text
    for line in (
        "llm_prefix_cache_host_bytes 300.0",
        "llm_prefix_cache_host_capacity_bytes 1000.0",
        "llm_prefix_cache_host_entries 1.0",
        "llm_prefix_cache_host_hits_total 2.0",
        "llm_prefix_cache_host_misses_total 1.0",
        "llm_prefix_cache_host_restored_tokens_total 5.0",
        "llm_prefix_cache_host_restore_failures_total 0.0",
        'llm_prefix_cache_host_restore_seconds_bucket{le="0.0025"} 1.0',
        'llm_prefix_cache_host_restore_seconds_bucket{le="0.25"} 2.0',
        'llm_prefix_cache_host_restore_seconds_bucket{le="+Inf"} 2.0',
        "llm_prefix_cache_host_restore_seconds_count 2.0",
    ):
        assert line in text, line


async def test_metrics_need_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 401


async def test_one_json_line_per_request_without_text(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_prompt = "my very private prompt"
    with caplog.at_level(logging.INFO, logger="llm_server.access"):
        response = await client.post(
            "/v1/chat/completions",
            headers={**AUTH, "X-Request-ID": "req-42"},
            json={"messages": [{"role": "user", "content": secret_prompt}]},
        )
    assert response.headers["x-request-id"] == "req-42"
    [record] = [r for r in caplog.records if r.name == "llm_server.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42"
    assert line["route"] == "/v1/chat/completions"
    assert line["status"] == 200
    assert line["completion_tokens"] == 5
    assert line["ttft_ms"] is not None
    assert secret_prompt not in caplog.text
    assert "Hello there" not in caplog.text
    assert AUTH["Authorization"].split()[1] not in caplog.text


async def test_a_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert len(response.headers["x-request-id"]) == 32

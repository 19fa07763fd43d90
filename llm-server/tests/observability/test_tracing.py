"""Spans of one request share the gateway's trace: the request, then queue, prefill, decode."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llm_server.app import create_app
from llm_server.config import Settings
from llm_server.engine.types import Finished, GenerationEvent, SamplingParams
from llm_server.observability.tracing import Tracing, TracingMiddleware
from tests.conftest import AUTH, wait_ready
from tests.fakes import FakeEngine, FakeGeneration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
SECRET = "a very private prompt"


class QueuedGeneration(FakeGeneration):
    """The fake's events, its end saying the sequence waited 1 ms for a slot (as the
    scheduler's do)."""

    async def events(self) -> AsyncGenerator[GenerationEvent, None]:
        async for event in super().events():
            if isinstance(event, Finished):
                event = dataclasses.replace(event, queued_s=0.001)
            yield event


class QueuedEngine(FakeEngine):
    def start(self, prompt: list[int], params: SamplingParams, client: str) -> FakeGeneration:
        generation = super().start(prompt, params, client)
        return QueuedGeneration(self, generation.prompt, generation.params)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    settings: Settings, exporter: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    tracing = Tracing({}, span_processor=SimpleSpanProcessor(exporter))
    app = create_app(settings, QueuedEngine(), tracing)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        await wait_ready(http)
        exporter.clear()
        yield http


def _parent(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def _trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


@pytest.mark.parametrize("stream", [False, True])
async def test_one_request_is_one_trace_under_the_gateways_span(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter, stream: bool
) -> None:
    body = {"messages": [{"role": "user", "content": SECRET}], "stream": stream}
    res = await traced.post(
        "/v1/chat/completions", headers={**AUTH, "traceparent": TRACEPARENT}, json=body
    )
    assert res.status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"POST /v1/chat/completions", "queue", "prefill", "decode"}
    server = spans["POST /v1/chat/completions"]
    assert server.kind == SpanKind.SERVER
    assert _parent(server) == PARENT
    assert {_trace(span) for span in spans.values()} == {TRACE_ID}
    for phase in ("queue", "prefill", "decode"):
        assert _parent(spans[phase]) == format(server.context.span_id, "016x")
    queue, prefill, decode = spans["queue"], spans["prefill"], spans["decode"]
    assert queue.end_time is not None
    assert prefill.end_time is not None
    assert queue.end_time == prefill.start_time
    assert prefill.end_time == decode.start_time
    assert decode.attributes is not None
    assert decode.attributes["llm.completion_tokens"] == 5
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["llm.request_id"] == res.headers["x-request-id"]
    # No prompt, completion text or token in any span.
    recorded = repr([(s.attributes, s.events) for s in exporter.get_finished_spans()])
    assert SECRET not in recorded
    assert "Hello" not in recorded
    assert AUTH["Authorization"].split()[1] not in recorded


async def test_a_request_without_traceparent_starts_a_trace_refused_ones_too(
    traced: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    assert (await traced.get("/v1/models")).status_code == 401
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 401


def test_no_exporter_and_no_middleware_without_an_endpoint(settings: Settings) -> None:
    built: list[InMemorySpanExporter] = []

    def factory() -> InMemorySpanExporter:
        built.append(InMemorySpanExporter())
        return built[-1]

    off = Tracing({}, exporter=factory)
    assert not off.recording
    assert not Tracing(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
        exporter=factory,
    ).recording
    assert built == []
    app = create_app(settings, FakeEngine(), off)
    assert TracingMiddleware not in [getattr(m, "cls", None) for m in app.user_middleware]
    on = Tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, exporter=factory)
    assert on.recording
    assert len(built) == 1
    app = create_app(settings, FakeEngine(), on)
    assert TracingMiddleware in [getattr(m, "cls", None) for m in app.user_middleware]
    on.shutdown()

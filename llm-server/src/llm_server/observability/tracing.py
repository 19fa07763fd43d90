"""OpenTelemetry tracing: a server span per request, child of the gateway's `traceparent`, and
the generation's phases (queue wait, prefill, decode) as child spans made once it ends — never
a span per token.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
no provider, processor or exporter is built and no middleware is installed. The standard
OTEL_* variables apply (service name, resource attributes, sampler, batch processor, exporter
headers and timeout): the SDK reads them itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from llm_server.engine.types import Finished
from llm_server.security import ASGIApp, Message, Receive, Scope, Send

SERVICE_NAME = "llm-server"
_PROPAGATED = {b"traceparent", b"tracestate"}
_propagator = TraceContextTextMapPropagator()


def exporting(env: Mapping[str, str]) -> bool:
    """True when the environment asks for spans to be exported over OTLP."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and not disabled and exporter == "otlp"


def _otlp_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


class Tracing:
    """One app's tracer: recording through `span_processor` (tests) or the OTLP exporter, or
    nothing at all (`recording` false)."""

    def __init__(
        self,
        env: Mapping[str, str],
        span_processor: SpanProcessor | None = None,
        exporter: Callable[[], SpanExporter] = _otlp_exporter,
    ) -> None:
        if span_processor is None and exporting(env):
            span_processor = BatchSpanProcessor(exporter())
        self.recording = span_processor is not None
        self._provider: TracerProvider | None = None
        self.tracer: Tracer = trace.NoOpTracer()
        if span_processor is not None:
            # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME wins over ours.
            attributes = {"service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME}
            self._provider = TracerProvider(resource=Resource.create(attributes))
            self._provider.add_span_processor(span_processor)
            self.tracer = self._provider.get_tracer(SERVICE_NAME)

    def shutdown(self) -> None:
        """Export what is still buffered (at shutdown)."""
        if self._provider is not None:
            self._provider.shutdown()


@dataclass
class _RequestTrace:
    tracer: Tracer
    span: Span


_current: ContextVar[_RequestTrace | None] = ContextVar("llm_server_request_trace", default=None)


class TracingMiddleware:
    """A server span per HTTP request, child of the caller's traceparent (the gateway's upstream
    attempt). Named after the route template; attributes hold the method, route, status and
    request id — never a header, the query, or a body."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in _PROPAGATED
        }
        parent = _propagator.extract(carrier)
        method = str(scope.get("method", "GET"))
        span = self.tracing.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        current = _current.set(_RequestTrace(self.tracing.tracer, span))
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(StatusCode.ERROR)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status or 499)
            request_id = scope.get("state", {}).get("request_id")
            if request_id:
                span.set_attribute("llm.request_id", request_id)
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
            span.end()
            _current.reset(current)
            otel_context.detach(token)


def _to_ns(perf: float, offset_ns: int) -> int:
    return int(perf * 1e9) + offset_ns


def record_generation(
    started: float, finished: float, ttft_s: float | None, event: Finished
) -> None:
    """The phases of one generation as child spans of the current request, made after it
    ended from `time.perf_counter()` readings: `queue` (waiting for a sequence slot), `prefill`
    (reading the prompt, up to the first token) and `decode` (the rest). Without the engine's
    queue wait, `prefill` includes it. Does nothing outside a traced request."""
    current = _current.get()
    if current is None:
        return
    offset_ns = time.time_ns() - int(time.perf_counter() * 1e9)
    parent = trace.set_span_in_context(current.span)
    queued_s = event.queued_s
    first = finished if ttft_s is None else min(finished, started + ttft_s)
    admitted = started if queued_s is None else min(first, started + queued_s)
    phases: list[tuple[str, float, float, dict[str, Any]]] = []
    if queued_s is not None:
        phases.append(("queue", started, admitted, {}))
    prompt = {
        "llm.prompt_tokens": event.prompt_tokens,
        "llm.cached_prompt_tokens": event.cached_prompt_tokens,
    }
    phases.append(("prefill", admitted, first, prompt))
    if ttft_s is not None:
        decoded = {"llm.completion_tokens": event.completion_tokens}
        phases.append(("decode", first, finished, decoded))
    for name, begin, end, attributes in phases:
        span = current.tracer.start_span(
            name, context=parent, start_time=_to_ns(begin, offset_ns), attributes=attributes
        )
        span.end(end_time=_to_ns(end, offset_ns))
    current.span.set_attribute("llm.finish_reason", event.reason)

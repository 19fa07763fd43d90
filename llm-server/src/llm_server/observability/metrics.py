"""Prometheus metrics, in a registry per app so that tests and several apps never collide."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from llm_server.engine import RESTORE_BUCKETS, EngineLoad
from llm_server.models import ModelStatus

MODEL_STATES = ("loaded", "loading", "unloaded", "failed")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class Metrics:
    """Every metric llm-server exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "llm_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "llm_time_to_first_token_seconds",
            "From request start to the first generated token",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inter_token = Histogram(
            "llm_inter_token_seconds",
            "Between consecutive tokens of one generation",
            buckets=INTER_TOKEN_BUCKETS,
            registry=registry,
        )
        self.request_duration = Histogram(
            "llm_request_duration_seconds",
            "Whole request, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "llm_prompt_tokens", "Prompt tokens processed", registry=registry
        )
        self.completion_tokens = Counter(
            "llm_completion_tokens", "Completion tokens generated", registry=registry
        )
        self.model_load_seconds = Gauge(
            "llm_model_load_seconds",
            "Time the default model took to load (per model: llm_model_last_load_seconds)",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "llm_queue_depth", "Requests waiting for a sequence slot", registry=registry
        )
        self.running = Gauge("llm_running_sequences", "Sequences being decoded", registry=registry)
        self.prefix_tokens_reused = Gauge(
            "llm_prefix_cache_reused_tokens_total",
            "Prompt tokens not recomputed thanks to prefix reuse",
            registry=registry,
        )

        self.draft_tokens = Gauge(
            "llm_draft_tokens_total",
            "Guessed next tokens decoded to fill a step (speculative decoding by prompt lookup)",
            registry=registry,
        )
        self.draft_tokens_accepted = Gauge(
            "llm_draft_tokens_accepted_total",
            "Guessed tokens the model confirmed: tokens produced without a step of their own",
            registry=registry,
        )

    def bind_load(self, read: Callable[[], EngineLoad]) -> None:
        """Read the engine's load at scrape time."""
        self.queue_depth.set_function(lambda: read().queued)
        self.running.set_function(lambda: read().running)
        self.prefix_tokens_reused.set_function(lambda: read().prefix_tokens_reused)
        self.draft_tokens.set_function(lambda: read().draft_tokens)
        self.draft_tokens_accepted.set_function(lambda: read().draft_tokens_accepted)
        self.registry.register(HostPrefixCacheCollector(read))

    def bind_models(self, read: Callable[[], list[ModelStatus]], default: int = 0) -> None:
        """Read every model's state at scrape time; `default`: the default model's index."""
        self.model_load_seconds.set_function(lambda: read()[default].load_seconds or 0.0)
        self.registry.register(ModelsCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HostPrefixCacheCollector(Collector):
    """The host-memory prefix cache, read from the engine at scrape time (one consistent
    snapshot per scrape, the restore-time histogram included)."""

    def __init__(self, read: Callable[[], EngineLoad]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read().prefix_cache
        prefix = "llm_prefix_cache_host"
        yield GaugeMetricFamily(f"{prefix}_bytes", "KV state bytes held", value=stats.bytes)
        yield GaugeMetricFamily(
            f"{prefix}_capacity_bytes",
            "The bound on those bytes (LLM_PREFIX_CACHE_BYTES)",
            value=stats.capacity_bytes,
        )
        yield GaugeMetricFamily(f"{prefix}_entries", "Sequences held", value=stats.entries)
        for name, text, value in (
            ("hits", "Prompts whose prefix was restored from host memory", stats.hits),
            (
                "misses",
                "Prompts with 64+ tokens found nowhere (neither context nor host)",
                stats.misses,
            ),
            (
                "restored_tokens",
                "Prompt tokens restored instead of recomputed",
                stats.restored_tokens,
            ),
            (
                "restore_failures",
                "States llama.cpp refused (dropped; prompt read fresh)",
                stats.restore_failures,
            ),
            ("saved", "Sequence states copied to host memory", stats.saved),
        ):
            yield CounterMetricFamily(f"{prefix}_{name}", text, value=value)
        buckets = [
            (str(bound), count)
            for bound, count in zip(RESTORE_BUCKETS, stats.restore_buckets, strict=False)
        ]
        buckets.append(("+Inf", stats.restore_buckets[-1]))
        yield HistogramMetricFamily(
            f"{prefix}_restore_seconds",
            "Time to write a state back into the context (scheduler thread, between steps)",
            buckets=buckets,
            sum_value=stats.restore_seconds,
        )


class ModelsCollector(Collector):
    """Each model's state, load time, loads and unloads, read at scrape time."""

    def __init__(self, read: Callable[[], list[ModelStatus]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        models = self._read()
        state = GaugeMetricFamily(
            "llm_model_state", "1 for the state each model is in", labels=["model", "state"]
        )
        seconds = GaugeMetricFamily(
            "llm_model_last_load_seconds", "How long its last load took", labels=["model"]
        )
        memory = GaugeMetricFamily(
            "llm_model_memory_estimate_bytes",
            "Its file plus a full KV cache: what it counts against the memory budget",
            labels=["model"],
        )
        loads = CounterMetricFamily("llm_model_loads", "Loads that succeeded", labels=["model"])
        unloads = CounterMetricFamily(
            "llm_model_unloads",
            "Unloads, by reason (idle: its idle time passed; memory: room for another)",
            labels=["model", "reason"],
        )
        for model in models:
            for name in MODEL_STATES:
                state.add_metric([model.id, name], float(model.state == name))
            seconds.add_metric([model.id], model.load_seconds or 0.0)
            memory.add_metric([model.id], model.memory_bytes)
            loads.add_metric([model.id], model.loads)
            for reason in ("idle", "memory"):
                unloads.add_metric([model.id, reason], model.unloads.get(reason, 0))
        yield from (state, seconds, memory, loads, unloads)

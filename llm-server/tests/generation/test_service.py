"""The generation service: readiness, the model, and jobs run as measured streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing

import pytest

from llm_server.config import Settings
from llm_server.engine.errors import EngineUnavailableError, GenerationTimeoutError
from llm_server.engine.types import SamplingParams, TokenOut
from llm_server.errors import ModelNotFoundError, UnavailableError
from llm_server.generation.jobs import Job, RequestUsage
from llm_server.generation.service import GenerationService
from llm_server.lifecycle import Lifecycle
from llm_server.observability.metrics import Metrics
from tests.fakes import FakeEngine, generation_service, single_registry


@pytest.fixture
def service(engine: FakeEngine) -> GenerationService:
    return generation_service(engine)


@pytest.fixture
async def job(service: GenerationService) -> Callable[..., Awaitable[Job]]:
    async def make(n: int = 1, max_tokens: int = 16) -> Job:
        model = await service.resolve_model("default")
        return Job(model, [1, 2], [SamplingParams(max_tokens=max_tokens)] * n, "c", "chat")

    return make


async def test_the_model_is_found_by_id_or_alias(service: GenerationService) -> None:
    for name in ("default", "fake-model", "Fake-Model", " fake-model ", "DEFAULT"):
        with await service.resolve_model(name) as model:
            assert model.id == "fake-model"
    with pytest.raises(ModelNotFoundError, match="'fake-model'"):
        await service.resolve_model("gpt-4")


def test_work_is_refused_until_ready_and_readiness_reports_the_load(
    engine: FakeEngine, settings: Settings
) -> None:
    registry = single_registry(engine, max_running=7)
    lifecycle = Lifecycle(registry)
    service = GenerationService(registry, lifecycle, Metrics())
    with pytest.raises(UnavailableError, match="not ready"):
        service.ensure_ready()
    assert service.readiness().state == "loading"
    assert service.readiness().running is None
    lifecycle.state, registry.default.state = "ready", "loaded"
    service.ensure_ready()
    assert service.readiness().max_running == 7
    assert [m.kind for m in service.models()] == ["base"]


async def test_run_collects_every_choice(
    service: GenerationService, job: Callable[..., Awaitable[Job]]
) -> None:
    usage = RequestUsage()
    results = await service.run(await job(n=2, max_tokens=3), usage)
    assert [r.text for r in results] == ["Hello there,", "Hello there,"]
    assert all(r.finish is not None and r.finish.reason == "length" for r in results)
    assert usage.completion_tokens == 6
    assert usage.ttft_s is not None


async def test_an_engine_failure_is_raised_after_the_tokens_before_it(
    service: GenerationService, engine: FakeEngine, job: Callable[..., Awaitable[Job]]
) -> None:
    engine.fail_after = 2
    seen: list[str] = []

    async def consume() -> None:
        async for _, event in service.start(await job(), RequestUsage()):
            if isinstance(event, TokenOut):
                seen.append(event.text)

    with pytest.raises(EngineUnavailableError, match="engine broke"):
        await consume()
    assert seen == ["Hello", " there"]


async def test_leaving_a_stream_early_cancels_every_choice(
    service: GenerationService, engine: FakeEngine, job: Callable[..., Awaitable[Job]]
) -> None:
    engine.token_delay = 0.01
    stream = service.start(await job(n=2), RequestUsage())
    async with aclosing(aiter(stream)) as events:
        async for _ in events:
            break
    assert engine.cancelled >= 2
    assert all(g.done.is_set() for g in engine.started)


async def test_a_timed_out_generation_is_a_504(
    service: GenerationService, engine: FakeEngine, job: Callable[..., Awaitable[Job]]
) -> None:
    engine.finish_reason_on_fail = "timeout"
    engine.fail_after = 1

    async def consume() -> None:
        async for _ in service.start(await job(), RequestUsage()):
            pass

    with pytest.raises(GenerationTimeoutError):
        await consume()

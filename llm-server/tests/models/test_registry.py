"""The model registry on scripted engines: load on first use, waits bounded by a 503, idle
and least-recently-used unloads under a memory budget, never a model in use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from llm_server.config import Settings
from llm_server.errors import ModelNotFoundError, UnavailableError
from llm_server.models import Catalog, ModelRegistry, ModelSpec
from tests.fakes import FakeEngine

MB = 2**20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Engines:
    """Makes one scripted engine per load and keeps them, newest last, per model."""

    def __init__(self) -> None:
        self.made: dict[str, list[FakeEngine]] = {}
        self.gate_closed: set[str] = set()
        self.failing: set[str] = set()

    def __call__(self, spec: ModelSpec) -> FakeEngine:
        engine = FakeEngine(fail=spec.id in self.failing)
        if spec.id in self.gate_closed:
            engine.gate.clear()
        self.made.setdefault(spec.id, []).append(engine)
        return engine

    def last(self, model: str) -> FakeEngine:
        return self.made[model][-1]


def spec(ident: str, **fields: object) -> ModelSpec:
    settings = Settings(app_env="test", max_running=2)
    base: dict[str, object] = {"memory_bytes": 100 * MB, "keep_loaded": False}
    return ModelSpec(id=ident, settings=settings, **{**base, **fields})  # type: ignore[arg-type]


@pytest.fixture
def engines() -> Engines:
    return Engines()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(engines: Engines, clock: Clock) -> AsyncIterator[Callable[..., ModelRegistry]]:
    made: list[ModelRegistry] = []

    def build(*specs: ModelSpec, budget: int | None = None, default: int = 0) -> ModelRegistry:
        catalog = Catalog(tuple(specs), default, budget, from_file=True)
        registry = ModelRegistry(catalog, engines, clock=clock)
        made.append(registry)
        return registry

    yield build
    for engine in [e for made_for in engines.made.values() for e in made_for]:
        engine.gate.set()
    for registry in made:
        await registry.close()


async def use(registry: ModelRegistry, name: str, wait_s: float = 10) -> None:
    with await registry.acquire(name, wait_s):
        pass


def states(registry: ModelRegistry) -> dict[str, str]:
    return {entry.id: entry.state for entry in registry.entries}


async def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Polls: the reaper's rounds have no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_model_loads_on_first_use_only(
    make: Callable[..., ModelRegistry], engines: Engines
) -> None:
    registry = make(spec("a"), spec("b"))
    await registry.start()
    assert states(registry) == {"a": "unloaded", "b": "unloaded"}
    await use(registry, "b")
    await use(registry, "b")
    assert states(registry) == {"a": "unloaded", "b": "loaded"}
    assert len(engines.made["b"]) == 1
    [status] = [s for s in registry.statuses() if s.id == "b"]
    assert status.loads == 1
    assert status.load_seconds is not None


async def test_names_are_ids_aliases_or_default_whatever_their_case(
    make: Callable[..., ModelRegistry],
) -> None:
    registry = make(spec("Alpha", aliases=("first",)), spec("b"), default=1)
    for name, found in [
        ("Alpha", "Alpha"),
        ("alpha", "Alpha"),
        (" ALPHA ", "Alpha"),
        ("First", "Alpha"),
        ("default", "b"),
        ("Default ", "b"),
    ]:
        assert registry.find(name).id == found, name
    for name in ("", "alpha-", "gamma", "defaults"):
        with pytest.raises(ModelNotFoundError, match="'Alpha', 'b'"):
            registry.find(name)


async def test_a_request_for_a_loading_model_waits_then_gets_a_503(
    make: Callable[..., ModelRegistry], engines: Engines
) -> None:
    engines.gate_closed.add("a")
    registry = make(spec("a"))
    with pytest.raises(UnavailableError, match="'a' is loading") as caught:
        await registry.acquire("a", 0.05)
    assert (caught.value.retry_after or 0) >= 1
    assert states(registry) == {"a": "loading"}
    waiting = asyncio.ensure_future(registry.acquire("a", 10))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # waits while the load goes on
    engines.last("a").gate.set()
    (await waiting).release()
    assert states(registry) == {"a": "loaded"}
    assert len(engines.made["a"]) == 1  # both requests waited on the same load


async def test_a_failed_load_is_a_503_and_the_next_request_tries_again(
    make: Callable[..., ModelRegistry], engines: Engines
) -> None:
    engines.failing.add("a")
    registry = make(spec("a"))
    with pytest.raises(UnavailableError, match="'a' failed to load: not a GGUF file"):
        await registry.acquire("a", 10)
    assert states(registry) == {"a": "failed"}
    assert engines.last("a").closed
    engines.failing.clear()
    await use(registry, "a")
    assert states(registry) == {"a": "loaded"}


async def test_an_idle_model_is_unloaded_after_its_idle_time(
    make: Callable[..., ModelRegistry], engines: Engines, clock: Clock
) -> None:
    registry = make(spec("a", idle_unload_s=0.2), spec("k", idle_unload_s=0.2, keep_loaded=True))
    await registry.start()
    await use(registry, "a")
    await asyncio.sleep(0.3)  # several reaper rounds: the clock has not moved
    assert states(registry) == {"a": "loaded", "k": "loaded"}
    clock.now += 1
    await until(lambda: states(registry)["a"] == "unloaded")
    assert engines.last("a").closed
    assert states(registry)["k"] == "loaded"  # kept loaded, whatever its idle time
    assert registry.statuses()[0].unloads == {"idle": 1}
    await use(registry, "a")  # loads again
    assert len(engines.made["a"]) == 2


async def test_a_model_with_work_is_never_idle_unloaded(
    make: Callable[..., ModelRegistry], engines: Engines, clock: Clock
) -> None:
    registry = make(spec("a", idle_unload_s=0.2))
    await registry.start()
    lease = await registry.acquire("a", 10)
    clock.now += 10
    await asyncio.sleep(0.3)
    assert states(registry) == {"a": "loaded"}
    lease.release()
    clock.now += 10
    await until(lambda: states(registry)["a"] == "unloaded")


async def test_the_least_recently_used_idle_model_makes_room(
    make: Callable[..., ModelRegistry], engines: Engines, clock: Clock
) -> None:
    registry = make(spec("a"), spec("b"), spec("c"), budget=250 * MB)
    for name in ("a", "b"):
        await use(registry, name)
        clock.now += 1
    await use(registry, "a")  # a is now more recent than b
    clock.now += 1
    await use(registry, "c")
    assert states(registry) == {"a": "loaded", "b": "unloaded", "c": "loaded"}
    assert engines.last("b").closed
    assert [s.unloads for s in registry.statuses()] == [{}, {"memory": 1}, {}]


async def test_a_model_in_use_is_never_unloaded_for_room(
    make: Callable[..., ModelRegistry], engines: Engines
) -> None:
    registry = make(spec("a"), spec("b"), budget=150 * MB)
    lease = await registry.acquire("a", 10)
    with pytest.raises(
        UnavailableError, match=r"'b' needs about 100 MiB .* 'a' \(loaded, in use\)"
    ):
        await registry.acquire("b", 10)
    assert states(registry) == {"a": "loaded", "b": "unloaded"}
    lease.release()
    # Work queued in its engine holds it too.
    engines.last("a").running = 1
    with pytest.raises(UnavailableError, match="in use"):
        await registry.acquire("b", 10)
    engines.last("a").running = 0
    await use(registry, "b")
    assert states(registry) == {"a": "unloaded", "b": "loaded"}


async def test_a_model_kept_loaded_is_never_unloaded_for_room(
    make: Callable[..., ModelRegistry],
) -> None:
    registry = make(spec("k", keep_loaded=True), spec("b"), budget=150 * MB)
    await registry.start()
    with pytest.raises(UnavailableError, match="'k' \\(kept loaded\\)"):
        await registry.acquire("b", 10)
    assert states(registry) == {"k": "loaded", "b": "unloaded"}


async def test_the_load_of_every_engine_is_added_up_and_survives_unloads(
    make: Callable[..., ModelRegistry], engines: Engines
) -> None:
    registry = make(spec("a"), spec("b"), budget=150 * MB)
    await use(registry, "a")
    engines.last("a").drafted = 5
    await use(registry, "b")  # a is unloaded for room: its counts stay
    engines.last("b").drafted = 2
    engines.last("b").running = 1
    load = registry.load_stats()
    assert (load.draft_tokens, load.running) == (7, 1)
    assert registry.max_running == 4

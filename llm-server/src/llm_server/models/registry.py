"""The models of one llm-server and their lives: each has its own engine (its own llama.cpp
context and scheduler thread), loaded on first use in a worker thread, unloaded after an idle
time or when the memory budget needs room (least recently used idle model first; never one
with work running or waiting). Everything here runs on the event loop: no locks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from llm_server.engine import Engine, EngineLoad
from llm_server.engine.base import combined_load, counters_only
from llm_server.errors import ModelNotFoundError, UnavailableError
from llm_server.models.catalog import Catalog, Kind, ModelSpec, mib
from llm_server.models.file import RESERVED_NAME, name_key

logger = logging.getLogger("llm_server.models")

State = Literal["unloaded", "loading", "loaded", "failed"]
EngineFactory = Callable[[ModelSpec], Engine]
UnloadReason = Literal["idle", "memory"]


@dataclass(frozen=True)
class ModelStatus:
    """One model's state and history, for `/health/ready` and `/metrics`."""

    id: str
    state: State
    load_seconds: float | None
    loads: int
    unloads: dict[str, int]
    memory_bytes: int


class ModelEntry:
    """One model: its spec, its engine while loaded, and what it is doing."""

    def __init__(self, spec: ModelSpec, engine: Engine | None = None) -> None:
        self.spec = spec
        self.engine = engine  # kept when preset (the single model of the settings)
        self.preset = engine is not None
        self.state: State = "unloaded"
        self.error: str | None = None
        self.leases = 0  # requests holding the model between resolving it and queueing work
        self.last_used = 0.0
        self.loads = 0
        self.unloads: Counter[str] = Counter()
        self.load_seconds: float | None = None
        self.task: asyncio.Task[None] | None = None  # its load or unload in progress
        self.unloading = False

    @property
    def id(self) -> str:
        return self.spec.id or (self.engine.model_id if self.engine is not None else "")

    def busy(self) -> bool:
        """Held by a request, or work running or waiting in its engine."""
        if self.leases:
            return True
        if self.engine is None:
            return False
        load = self.engine.load_stats()
        return load.running + load.queued > 0

    def kind(self) -> Kind | None:
        if self.state == "loaded" and self.engine is not None:
            template = self.engine.has_chat_template
            if template is not None:
                return "chat" if template else "base"
        return self.spec.kind

    def context_length(self) -> int:
        if self.engine is not None and (self.state == "loaded" or self.preset):
            return self.engine.context_length
        return self.spec.context_length or self.spec.settings.context_length


class ModelLease:
    """A request's hold on a loaded model, from resolving it until its work is queued in the
    engine (which then counts it): a held model is never unloaded."""

    def __init__(self, entry: ModelEntry, release: Callable[[ModelEntry], None]) -> None:
        assert entry.engine is not None
        self.id = entry.id
        self.engine: Engine = entry.engine
        self.sampling = entry.spec.sampling
        self._entry = entry
        self._release: Callable[[ModelEntry], None] | None = release

    def release(self) -> None:
        """Let the model go (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release(self._entry)

    @contextlib.contextmanager
    def released_on_error(self) -> Iterator[ModelLease]:
        """Hold on while a job is built; let go if building it fails."""
        try:
            yield self
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> ModelLease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class ModelRegistry:
    """Finds models by name, loads them on demand, unloads them when idle or for room."""

    def __init__(
        self,
        catalog: Catalog,
        factory: EngineFactory,
        *,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`engine`: the single model's engine, made by the caller (no models file)."""
        self._entries = [ModelEntry(spec) for spec in catalog.models]
        if engine is not None:
            self._entries[0] = ModelEntry(catalog.models[0], engine)
        self._default = self._entries[catalog.default]
        self._factory = factory
        self._budget = catalog.memory_budget
        self._clock = clock
        self._retired = EngineLoad(running=0, queued=0)
        self._reaper: asyncio.Task[None] | None = None
        self._loader = ThreadPoolExecutor(2, "model-loader", initializer=_lower_priority)
        idle = [s.idle_unload_s for s in catalog.models if s.idle_unload_s and not s.keep_loaded]
        # Often enough that a model goes within a quarter of its idle time of it.
        self._reap_every = min(max(min(idle) / 4, 0.05), 5.0) if idle else None

    @property
    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    @property
    def default(self) -> ModelEntry:
        return self._default

    @property
    def max_running(self) -> int:
        return sum(entry.spec.settings.max_running for entry in self._entries)

    def find(self, name: str) -> ModelEntry:
        """The model a request's `model` names: an id or alias (without regard to case or
        surrounding spaces), or `default`; 404 otherwise."""
        key = name_key(name)
        if key == RESERVED_NAME:
            return self._default
        for entry in self._entries:
            if key in entry.spec.names() or (entry.id and key == name_key(entry.id)):
                return entry
        known = ", ".join(f"'{e.id}'" for e in self._entries)
        raise ModelNotFoundError(
            f"the model '{name}' does not exist; this server has {known} (or 'default')",
            param="model",
        )

    async def acquire(self, name: str, wait_s: float) -> ModelLease:
        """The named model, loaded (a 503 saying it is loading after `wait_s`), held until the
        lease is released."""
        entry = self.find(name)
        entry.leases += 1
        try:
            await self._loaded(entry, wait_s)
        except BaseException:
            entry.leases -= 1
            raise
        entry.last_used = self._clock()
        return ModelLease(entry, self._release)

    def _release(self, entry: ModelEntry) -> None:
        entry.leases -= 1
        entry.last_used = self._clock()

    async def _loaded(self, entry: ModelEntry, wait_s: float) -> None:
        if entry.state == "loaded":
            return
        if entry.state in ("unloaded", "failed"):
            self._begin_load(entry)
        assert entry.task is not None
        # asyncio.wait never cancels the load: it goes on for the next request.
        done, _ = await asyncio.wait({entry.task}, timeout=wait_s)
        if not done:
            retry = max(1, math.ceil(entry.load_seconds or 5))
            raise UnavailableError(
                f"the model '{entry.id}' is loading; retry in a few seconds", retry_after=retry
            )
        state: State = entry.state  # changed by the load while this waited
        if state != "loaded":
            raise UnavailableError(
                f"the model '{entry.id}' failed to load: {entry.error}", retry_after=5
            )

    # ------------------------------------------------------------------ loading
    def _begin_load(self, entry: ModelEntry) -> None:
        """Make room (or refuse with a 503), then load in the background."""
        waits = self._make_room(entry)
        entry.state, entry.error = "loading", None
        entry.task = asyncio.create_task(self._load(entry, waits))

    async def _load(self, entry: ModelEntry, waits: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*waits, return_exceptions=True)  # memory being freed first
        started = self._clock()
        engine = entry.engine if entry.preset else None
        try:
            engine = engine or self._factory(entry.spec)
            # The loader thread: the event loop and every other model's scheduler go on.
            await asyncio.get_running_loop().run_in_executor(self._loader, engine.load)
        except Exception as exc:
            entry.state, entry.error = "failed", str(exc)
            logger.error("model failed to load", extra={"model": entry.id, "error": str(exc)})
            if engine is not None and not entry.preset:
                await _close_quietly(engine, entry.id)
            return
        entry.engine = engine
        entry.state, entry.loads = "loaded", entry.loads + 1
        entry.load_seconds = self._clock() - started
        entry.last_used = self._clock()
        logger.info(
            "model loaded", extra={"model": entry.id, "seconds": round(entry.load_seconds, 3)}
        )

    def _make_room(self, entry: ModelEntry) -> list[asyncio.Task[None]]:
        """Unload least recently used idle models until `entry` fits the budget; the tasks to
        wait for (unloads under way). A 503 when busy or kept models hold the room."""
        waits = [e.task for e in self._entries if e.unloading and e.task is not None]
        if self._budget is None:
            return waits
        others = [e for e in self._entries if e is not entry and e.state in ("loaded", "loading")]
        free = self._budget - sum(e.spec.memory_bytes for e in others)
        idle = sorted(
            (e for e in others if e.state == "loaded" and not e.spec.keep_loaded and not e.busy()),
            key=lambda e: e.last_used,
        )
        victims: list[ModelEntry] = []
        for candidate in idle:
            if free >= entry.spec.memory_bytes:
                break
            victims.append(candidate)
            free += candidate.spec.memory_bytes
        if free < entry.spec.memory_bytes:
            holders = ", ".join(
                f"'{e.id}' ({'kept loaded' if e.spec.keep_loaded else e.state + ', in use'})"
                for e in others
            )
            raise UnavailableError(
                f"the model '{entry.id}' needs about {mib(entry.spec.memory_bytes)} of the "
                f"memory budget ({mib(self._budget)}), which {holders} hold; retry later",
                retry_after=5,
            )
        return waits + [self._begin_unload(victim, "memory") for victim in victims]

    # ------------------------------------------------------------------ unloading
    def _begin_unload(self, entry: ModelEntry, reason: UnloadReason) -> asyncio.Task[None]:
        engine, entry.engine = entry.engine, None
        assert engine is not None
        entry.state, entry.unloading = "unloaded", True
        entry.unloads[reason] += 1
        self._retired = combined_load([self._retired, counters_only(engine.load_stats())])
        logger.info("model unloading", extra={"model": entry.id, "reason": reason})
        entry.task = asyncio.create_task(self._unload(entry, engine))
        return entry.task

    async def _unload(self, entry: ModelEntry, engine: Engine) -> None:
        try:
            await _close_quietly(engine, entry.id)
        finally:
            entry.unloading = False

    async def _reap_idle(self, every: float) -> None:
        """Unload models idle for their `idle_unload_s` (counted from their last work)."""
        while True:
            await asyncio.sleep(every)
            now = self._clock()
            for entry in self._entries:
                limit = entry.spec.idle_unload_s
                if entry.state != "loaded" or entry.spec.keep_loaded or limit is None:
                    continue
                if entry.busy():
                    entry.last_used = now
                elif now - entry.last_used >= limit:
                    self._begin_unload(entry, "idle")

    # ------------------------------------------------------------------ life
    async def start(self) -> str | None:
        """Load the models kept loaded (the default first); the default model's load error,
        if it is one of them and failed."""
        kept = sorted(
            (e for e in self._entries if e.spec.keep_loaded), key=lambda e: e is not self._default
        )
        for entry in kept:
            self._begin_load(entry)
            assert entry.task is not None
            await entry.task
        if self._reap_every is not None:
            self._reaper = asyncio.create_task(self._reap_idle(self._reap_every))
        failed = self._default.spec.keep_loaded and self._default.state == "failed"
        return self._default.error if failed else None

    async def close(self) -> None:
        """Stop unloading; let every model's running work finish (the drain), free them all."""
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        tasks = [e.task for e in self._entries if e.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        engines = [e.engine for e in self._entries if e.engine is not None]
        for entry in self._entries:
            entry.engine = entry.engine if entry.preset else None
            entry.state = "unloaded" if entry.state == "loaded" else entry.state
        await asyncio.gather(*(engine.close() for engine in engines))
        self._loader.shutdown(wait=False)

    def load_stats(self) -> EngineLoad:
        """Every engine's load together (counts of unloaded engines kept)."""
        live = [e.engine.load_stats() for e in self._entries if e.engine is not None]
        return combined_load([self._retired, *live])

    def statuses(self) -> list[ModelStatus]:
        return [
            ModelStatus(
                e.id, e.state, e.load_seconds, e.loads, dict(e.unloads), e.spec.memory_bytes
            )
            for e in self._entries
        ]


# How much lower the loader thread's priority is (Unix niceness). On few cores a load at the
# same priority as decoding starves it: llama.cpp's decode threads meet at barriers, and one of
# them sharing a core with the loader stalls every stream of the other models for the whole
# load (measured on 2 cores: no token for 2-4 s). Niced, the load takes the idle time.
LOADER_NICENESS = 10


def _lower_priority() -> None:
    """Run in each loader thread as it starts (Linux: a thread has its own niceness)."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not on this system
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + LOADER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


async def _close_quietly(engine: Engine, model: str) -> None:
    try:
        await engine.close()
    except Exception as exc:  # freeing failed: nothing to retry, the model is gone anyway
        logger.error("model failed to unload", extra={"model": model, "error": str(exc)})

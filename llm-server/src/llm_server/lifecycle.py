"""The server's life: loading the model, ready, draining on shutdown, or failed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from llm_server.engine import Engine
from llm_server.observability.metrics import Metrics

logger = logging.getLogger("llm_server.lifecycle")

State = Literal["loading", "ready", "draining", "failed"]


class Lifecycle:
    """Owns the engine's start and stop; readiness reads its state."""

    def __init__(self, engine: Engine, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics
        self.state: State = "loading"
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._closed = False

    @property
    def model_id(self) -> str | None:
        return self.engine.model_id if self.state in ("ready", "draining") else None

    async def start(self) -> None:
        """Load the model in a worker thread; the server answers probes meanwhile."""
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.engine.load)
        except Exception as exc:
            self.state, self.error = "failed", f"model failed to load: {exc}"
            logger.error(self.error)
            return
        self.load_seconds = time.perf_counter() - started
        if self.state == "loading":  # a shutdown may have begun while the model loaded
            self.state = "ready"
        if self.metrics is not None:
            self.metrics.model_load_seconds.set(self.load_seconds)
        logger.info(
            "model loaded",
            extra={"model": self.engine.model_id, "seconds": round(self.load_seconds, 3)},
        )

    def begin_drain(self) -> None:
        """Readiness turns 503 and new inference requests are refused; running ones go on."""
        if self.state in ("ready", "loading"):
            self.state = "draining"

    async def stop(self) -> None:
        """Drain: running work finishes within the drain timeout or is cut in-band; free."""
        self.begin_drain()
        if not self._closed:
            self._closed = True
            await self.engine.close()

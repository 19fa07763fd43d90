"""The server's life: loading its models, ready, draining on shutdown, or failed."""

from __future__ import annotations

import logging
from typing import Literal

from llm_server.models import ModelRegistry

logger = logging.getLogger("llm_server.lifecycle")

State = Literal["loading", "ready", "draining", "failed"]


class Lifecycle:
    """Owns the models' start and stop; readiness reads its state."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.state: State = "loading"
        self.error: str | None = None
        self._closed = False

    @property
    def model_id(self) -> str | None:
        """The default model's id once the server takes requests."""
        return self.registry.default.id if self.state in ("ready", "draining") else None

    async def start(self) -> None:
        """Load the models kept loaded (the single model without a models file) in worker
        threads; the server answers probes meanwhile. Failed if the default model fails."""
        error = await self.registry.start()
        if error is not None:
            self.state, self.error = "failed", f"model failed to load: {error}"
            return
        if self.state == "loading":  # a shutdown may have begun while the models loaded
            self.state = "ready"

    def begin_drain(self) -> None:
        """Readiness turns 503 and new inference requests are refused; running ones go on."""
        if self.state in ("ready", "loading"):
            self.state = "draining"

    async def stop(self) -> None:
        """Drain: running work finishes within the drain timeout or is cut in-band; free."""
        self.begin_drain()
        if not self._closed:
            self._closed = True
            await self.registry.close()

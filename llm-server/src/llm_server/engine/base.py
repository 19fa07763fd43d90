"""What the HTTP layer needs from an inference backend, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EngineLoad:
    """How busy the engine is: exported as metrics and read by the gateway's balancer."""

    running: int
    queued: int


class Engine(Protocol):
    """An inference backend. Loading is blocking and runs off the event loop."""

    @property
    def model_id(self) -> str: ...

    @property
    def context_length(self) -> int: ...

    def load(self) -> None:
        """Load the model; raises on failure. Called once, in a worker thread."""
        ...

    def load_stats(self) -> EngineLoad: ...

    async def close(self) -> None:
        """Stop accepting work, finish or cut what runs, free the model."""
        ...

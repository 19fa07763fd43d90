"""Waiting requests, served round-robin across clients so that none can starve the others."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """One FIFO per client; `head()` is the oldest item of the client whose turn it is."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        for queue in self._queues.values():
            yield from queue

    def push(self, client: str, item: T) -> None:
        queue = self._queues.get(client)
        if queue is None:
            queue = self._queues[client] = deque()
            self._turns.append(client)
        queue.append(item)
        self._size += 1

    def head(self) -> T | None:
        return self._queues[self._turns[0]][0] if self._turns else None

    def pop_head(self, *, next_turn: bool = True) -> T:
        """Remove the head; the client goes to the back of the line unless `next_turn` is
        False (used to drop a cancelled item without costing its client a turn)."""
        client = self._turns[0]
        queue = self._queues[client]
        item = queue.popleft()
        self._size -= 1
        if not queue:
            del self._queues[client]
            self._turns.popleft()
        elif next_turn:
            self._turns.rotate(-1)
        return item

    def clear(self) -> list[T]:
        items = list(self)
        self._queues.clear()
        self._turns.clear()
        self._size = 0
        return items

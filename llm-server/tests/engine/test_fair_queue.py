from __future__ import annotations

from llm_server.engine.fair_queue import FairQueue


def drain(queue: FairQueue[str]) -> list[str]:
    order = []
    while queue.head() is not None:
        order.append(queue.pop_head())
    return order


def test_a_flooding_client_cannot_starve_the_others() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(5):
        queue.push("flood", f"f{i}")
    queue.push("alice", "a0")
    queue.push("bob", "b0")
    queue.push("alice", "a1")
    assert len(queue) == 8
    assert drain(queue) == ["f0", "a0", "b0", "f1", "a1", "f2", "f3", "f4"]
    assert len(queue) == 0


def test_dropping_a_cancelled_head_keeps_the_client_turn() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a0-cancelled")
    queue.push("a", "a1")
    queue.push("b", "b0")
    assert queue.pop_head(next_turn=False) == "a0-cancelled"
    assert queue.head() == "a1"


def test_clear_returns_everything_waiting() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "1")
    queue.push("b", "2")
    assert sorted(queue.clear()) == ["1", "2"]
    assert queue.head() is None

from __future__ import annotations

from llm_server.engine.slots import MIN_SHARED_PREFIX, SlotTable


class RecordingKv:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.refuse_partial = False

    def remove(self, slot: int, start: int) -> bool:
        self.calls.append(("remove", slot, start))
        return not (self.refuse_partial and start > 0)

    def copy(self, source: int, target: int, length: int) -> None:
        self.calls.append(("copy", source, target))


def finish(table: SlotTable, prompt: list[int], generated: list[int]) -> None:
    acquired = table.acquire(prompt, len(prompt) + len(generated), len(prompt) - 1)
    assert acquired is not None
    acquired.slot.tokens = [*prompt, *generated]
    table.release(acquired.slot, keep_cells=True)


def test_a_finished_sequence_prefix_is_reused_and_its_tail_dropped() -> None:
    kv = RecordingKv()
    table = SlotTable(4, 1000, kv)
    finish(table, [1, 2, 3, 4], [5, 6])
    next_turn = [1, 2, 3, 4, 5, 6, 7, 8]
    acquired = table.acquire(next_turn, 20, len(next_turn) - 1)
    assert acquired is not None
    assert acquired.reused == 6
    assert table.reused_tokens == 6
    assert kv.calls == []  # nothing to drop: the whole cache is a prefix
    other = table.acquire([1, 2, 9], 10, 2)
    assert other is not None
    assert other.reused == 0  # the only match is running and too short to share


def test_one_prompt_token_is_always_left_to_decode() -> None:
    table = SlotTable(2, 1000, RecordingKv())
    finish(table, [1, 2, 3], [4])
    acquired = table.acquire([1, 2, 3], 10, 2)
    assert acquired is not None
    assert acquired.reused == 2
    assert acquired.slot.tokens == [1, 2]


def test_a_long_prefix_of_a_running_sequence_is_shared() -> None:
    kv = RecordingKv()
    table = SlotTable(4, 1000, kv)
    system = list(range(100, 100 + MIN_SHARED_PREFIX + 4))
    first = table.acquire([*system, 1], 50, len(system))
    assert first is not None
    first.slot.tokens = [*system, 1]
    second = table.acquire([*system, 2], 50, len(system))
    assert second is not None
    assert second.reused == len(system)
    assert second.slot is not first.slot
    assert ("copy", first.slot.index, second.slot.index) in kv.calls


def test_idle_cells_are_evicted_least_recently_used_first_when_room_is_needed() -> None:
    kv = RecordingKv()
    table = SlotTable(4, 100, kv)
    finish(table, list(range(40)), [])
    finish(table, list(range(50, 90)), [])
    assert table.cells_in_use() == 80
    acquired = table.acquire(list(range(200, 230)), 50, 29)
    assert acquired is not None
    assert table.cells_in_use() <= 100
    assert ("remove", 0, 0) in kv.calls  # the older cache went first


def test_no_room_means_wait() -> None:
    table = SlotTable(4, 100, RecordingKv())
    running = table.acquire([1, 2, 3], 90, 2)
    assert running is not None
    assert table.acquire([4, 5], 20, 1) is None
    assert table.acquire([4, 5], 101, 1) is None
    table.release(running.slot, keep_cells=False)
    assert table.acquire([4, 5], 20, 1) is not None


def test_a_slot_released_without_keeping_cells_is_emptied_even_with_no_tokens_recorded() -> None:
    # A failed llama_decode may have cached part of a step before its tokens were recorded.
    kv = RecordingKv()
    table = SlotTable(2, 100, kv)
    acquired = table.acquire([1, 2, 3], 10, 2)
    assert acquired is not None
    assert acquired.slot.tokens == []
    table.release(acquired.slot, keep_cells=False)
    assert ("remove", acquired.slot.index, 0) in kv.calls


def test_a_cache_that_cannot_be_cut_is_dropped_whole() -> None:
    kv = RecordingKv()
    kv.refuse_partial = True
    table = SlotTable(2, 1000, kv)
    finish(table, [1, 2, 3, 4], [5])
    acquired = table.acquire([1, 2, 9, 9], 10, 3)
    assert acquired is not None
    assert acquired.reused == 0
    assert acquired.slot.tokens == []

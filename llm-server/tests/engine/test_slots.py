from __future__ import annotations

from llm_server.engine.prefix_cache import PrefixCache
from llm_server.engine.slots import MIN_HOST_TOKENS, MIN_SHARED_PREFIX, SlotTable


class RecordingKv:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.refuse_partial = False
        self.refuse_restore = False

    def remove(self, slot: int, start: int) -> bool:
        self.calls.append(("remove", slot, start))
        return not (self.refuse_partial and start > 0)

    def copy(self, source: int, target: int, length: int) -> None:
        self.calls.append(("copy", source, target))

    def save(self, slot: int) -> bytearray | None:
        self.calls.append(("save", slot, 0))
        return bytearray(100)

    def restore(self, slot: int, blob: bytearray) -> bool:
        self.calls.append(("restore", slot, len(blob)))
        return not self.refuse_restore


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
    # Every admitted prompt token is either reused or computed.
    assert table.computed_tokens == 4 + (8 - 6) + 3


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
    assert table.computed_tokens == 3  # a prompt not admitted is not counted
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


HISTORY = list(range(1000, 1000 + 3 * MIN_HOST_TOKENS))


def evict(table: SlotTable) -> None:
    """Other traffic that needs the room of every idle slot (of a 400-cell table)."""
    other = table.acquire(list(range(5000, 5300)), 380, 299)
    assert other is not None
    table.release(other.slot, keep_cells=False)


def evicted_history(kv: RecordingKv) -> tuple[SlotTable, PrefixCache]:
    """A table whose only idle slot held HISTORY and was evicted by other traffic."""
    host = PrefixCache(10_000)
    table = SlotTable(2, 400, kv, host)
    finish(table, HISTORY, [])
    evict(table)
    assert len(host) == 1
    return table, host


def test_evicted_cells_go_to_host_memory_and_come_back_for_a_longer_prompt() -> None:
    kv = RecordingKv()
    table, host = evicted_history(kv)
    assert ("save", 0, 0) in kv.calls
    next_turn = [*HISTORY, 1, 2, 3]
    acquired = table.acquire(next_turn, 250, len(next_turn) - 1)
    assert acquired is not None
    assert acquired.reused == len(HISTORY)
    assert acquired.slot.tokens == HISTORY
    assert ("restore", acquired.slot.index, 100) in kv.calls
    stats = host.stats()
    # The two first prompts found nothing: misses.
    assert (stats.hits, stats.misses, stats.restored_tokens) == (1, 2, len(HISTORY))


def test_a_restored_state_is_cut_to_the_shared_prefix() -> None:
    kv = RecordingKv()
    table, _ = evicted_history(kv)
    shared = 2 * MIN_HOST_TOKENS
    prompt = [*HISTORY[:shared], 7, 7]
    acquired = table.acquire(prompt, 250, len(prompt) - 1)
    assert acquired is not None
    assert acquired.reused == shared
    assert acquired.slot.tokens == HISTORY[:shared]
    assert kv.calls[-1] == ("remove", acquired.slot.index, shared)


def test_a_cache_that_cannot_cut_restores_whole_entries_only() -> None:
    kv = RecordingKv()
    host = PrefixCache(10_000)
    table = SlotTable(2, 400, kv, host, trimmable=False)
    finish(table, HISTORY, [])
    evict(table)
    prompt = [*HISTORY[:-1], 7, 7]
    misses = host.stats().misses
    acquired = table.acquire(prompt, 250, len(prompt) - 1)
    assert acquired is not None
    assert acquired.reused == 0
    assert host.stats().misses == misses + 1


def test_a_refused_restore_drops_the_entry_and_reads_the_prompt_fresh() -> None:
    kv = RecordingKv()
    table, host = evicted_history(kv)
    kv.refuse_restore = True
    next_turn = [*HISTORY, 1, 2, 3]
    acquired = table.acquire(next_turn, 250, len(next_turn) - 1)
    assert acquired is not None
    assert acquired.reused == 0
    assert acquired.slot.tokens == []
    stats = host.stats()
    assert (stats.hits, stats.restore_failures, stats.entries) == (0, 1, 0)
    assert table.cells_in_use() == 250


def test_short_sequences_are_not_saved_and_the_context_wins_when_it_holds_the_prefix() -> None:
    kv = RecordingKv()
    host = PrefixCache(10_000)
    table = SlotTable(2, 400, kv, host)
    finish(table, list(range(MIN_HOST_TOKENS - 1)), [])
    evict(table)
    assert len(host) == 0
    assert ("save", 0, 0) not in kv.calls
    # HISTORY in both the context and host memory: read from the context, nothing restored.
    finish(table, HISTORY, [])
    acquired = table.acquire([*HISTORY, 1], 250, len(HISTORY))
    assert acquired is not None
    assert acquired.reused == len(HISTORY)
    assert not any(call[0] == "restore" for call in kv.calls)

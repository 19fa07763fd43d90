"""The host-memory prefix cache's index: token trie, byte-bounded LRU, redundancy (no model)."""

from __future__ import annotations

import random

from llm_server.engine.prefix_cache import RESTORE_BUCKETS, PrefixCache


def blob(size: int) -> bytearray:
    return bytearray(size)


def test_the_longest_shared_prefix_is_found_and_the_smallest_entry_holding_it() -> None:
    cache = PrefixCache(1000)
    long = cache.add([1, 2, 3, 4, 5, 6], blob(60))
    short = cache.add([1, 2, 3, 9], blob(40))
    assert long is not None
    assert short is not None
    match = cache.lookup([1, 2, 3, 4, 7], limit=10)
    assert match is not None
    assert match.entry is long
    assert match.length == 4
    match = cache.lookup([1, 2, 3, 8], limit=10)
    assert match is not None
    assert match.entry is short
    assert match.length == 3
    match = cache.lookup([1, 2, 3, 4, 5, 6, 7], limit=2)
    assert match is not None
    assert match.length == 2
    assert cache.lookup([7, 1, 2], limit=10) is None
    assert cache.lookup([1, 2], limit=0) is None


def test_whole_only_finds_only_entries_that_start_the_prompt() -> None:
    cache = PrefixCache(1000)
    entry = cache.add([1, 2, 3], blob(10))
    cache.add([5, 6, 7, 8], blob(10))
    match = cache.lookup([1, 2, 3, 4], limit=10, whole_only=True)
    assert match is not None
    assert match.entry is entry
    assert match.length == 3
    assert cache.lookup([5, 6, 7, 9], limit=10, whole_only=True) is None
    assert cache.lookup([1, 2, 3, 4], limit=2, whole_only=True) is None


def test_bytes_bound_evicts_least_recently_used_first() -> None:
    cache = PrefixCache(100)
    a = cache.add([1, 1], blob(40))
    cache.add([2, 2], blob(40))
    assert cache.lookup([1, 1, 5], limit=5) is not None  # a is now the most recent
    cache.add([3, 3], blob(40))
    assert cache.bytes == 80
    assert len(cache) == 2
    assert cache.lookup([2, 2], limit=5) is None  # b went first
    match = cache.lookup([1, 1], limit=5)
    assert match is not None
    assert match.entry is a
    assert cache.stats().bytes <= cache.stats().capacity_bytes


def test_an_entry_over_the_whole_capacity_is_not_kept() -> None:
    cache = PrefixCache(100)
    cache.add([1], blob(50))
    assert cache.add([2], blob(101)) is None
    assert len(cache) == 1
    assert cache.bytes == 50


def test_a_longer_entry_replaces_its_prefixes_and_a_covered_one_is_not_added() -> None:
    cache = PrefixCache(1000)
    cache.add([1, 2, 3], blob(30))
    cache.add([1, 2, 9], blob(30))
    longer = cache.add([1, 2, 3, 4, 5], blob(50))
    assert longer is not None
    assert len(cache) == 2
    assert cache.bytes == 80
    assert cache.covers([1, 2, 3, 4])
    assert cache.covers([1, 2, 9])
    assert cache.add([1, 2, 3, 4], blob(40)) is None
    assert cache.add([1, 2, 3, 4, 5], blob(50)) is None
    assert len(cache) == 2


def test_discard_leaves_no_trace_and_is_idempotent() -> None:
    cache = PrefixCache(1000)
    keep = cache.add([1, 2, 3], blob(10))
    gone = cache.add([1, 2, 4, 5], blob(10))
    assert keep is not None
    assert gone is not None
    cache.discard(gone)
    cache.discard(gone)
    assert len(cache) == 1
    assert cache.bytes == 10
    assert not cache.covers([1, 2, 4])
    match = cache.lookup([1, 2, 4, 5], limit=10)
    assert match is not None
    assert match.entry is keep
    assert match.length == 2
    cache.discard(keep)
    assert cache.lookup([1, 2, 3], limit=10) is None
    assert cache._root.children == {}  # the trie holds nothing for dropped entries


def test_stats_count_hits_misses_failures_and_restore_times() -> None:
    cache = PrefixCache(1000)
    entry = cache.add([1, 2, 3], blob(10))
    assert entry is not None
    cache.record_restore(3, 0.002)
    cache.record_restore(2, 100.0)
    cache.record_miss()
    cache.record_failure(entry)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.restore_failures) == (2, 1, 1)
    assert stats.restored_tokens == 5
    assert stats.entries == 0
    assert stats.bytes == 0
    assert len(stats.restore_buckets) == len(RESTORE_BUCKETS) + 1
    assert stats.restore_buckets[-1] == 2  # cumulative: +Inf counts both
    assert stats.restore_buckets[RESTORE_BUCKETS.index(0.0025)] == 1
    assert abs(stats.restore_seconds - 100.002) < 1e-9


def test_a_shared_system_prompt_among_many_entries() -> None:
    rng = random.Random(7)
    cache = PrefixCache(1 << 40)
    system = [rng.randrange(262_144) for _ in range(500)]
    for _ in range(64):
        cache.add([*system, *(rng.randrange(262_144) for _ in range(1500))], blob(1))
    prompt = [*system, *(rng.randrange(262_144) for _ in range(1500))]
    match = cache.lookup(prompt, limit=len(prompt))
    assert match is not None
    assert match.length == 500
    assert len(cache._root.children) == 1  # the shared tokens are one path of the trie


def test_a_sliding_window_bounds_how_deep_a_restored_state_may_be_cut() -> None:
    cache = PrefixCache(1000)
    long = cache.add(list(range(10)), blob(10))
    short = cache.add([0, 1, 2, 3, 4, 50], blob(6))
    assert long is not None
    assert short is not None
    # Within the window any cut; beyond it only the last token may go.
    match = cache.lookup([0, 1, 2, 3, 9], limit=10, window=6)
    assert match is not None
    assert match.entry is short
    assert cache.lookup([0, 1, 2, 3, 4, 5, 6, 7, 0], limit=10, window=6) is None
    match = cache.lookup([0, 1, 2, 3, 4, 5, 6, 7, 8, 0], limit=10, window=6)
    assert match is not None
    assert match.entry is long
    assert match.length == 9
    whole = cache.add([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], blob(1))
    assert whole is not None  # long is now held by whole: a prefix of it
    match = cache.lookup([*range(13), 99], limit=20, window=6)
    assert match is not None
    assert match.entry is whole
    assert match.length == 13

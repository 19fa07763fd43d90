"""Host-memory prefix cache: KV states of evicted sequences, kept in RAM by their tokens.

When a slot's cells are about to be dropped, the scheduler copies the sequence's state out of
llama.cpp (`llama_state_seq_get_data`, one opaque blob per sequence) and files it here under
its tokens. A new prompt whose longest cached prefix is held here gets that state written back
into its slot and reads only the rest. Pure: it holds bytes and tokens, never calls llama.cpp,
and is tested without a model.

llama.cpp's per-sequence state is one blob for the whole sequence (every layer's cells, the
sliding-window caches' too): it cannot be cut into blocks that entries share. So entries are
whole sequences; an entry whose tokens are a prefix of a newer one is dropped when the newer
one arrives (the newer one serves every prompt the older one could), and the cache is bounded
by the bytes of its blobs, least recently used first.

Lookup walks a token trie along the prompt: each node knows which entries pass through it, so
the longest common prefix with any entry costs one dictionary step per prompt token.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, replace

# Restore times in seconds (a memcpy of a few MB to a few hundred MB).
RESTORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(eq=False)
class Entry:
    """One evicted sequence: its tokens and its llama.cpp state."""

    tokens: tuple[int, ...]
    blob: bytearray  # writable: llama.cpp reads it in place through a ctypes view

    @property
    def size(self) -> int:
        return len(self.blob)


@dataclass(frozen=True)
class Match:
    """`length` leading prompt tokens are held by `entry` (whose own tokens may go further)."""

    entry: Entry
    length: int


@dataclass(frozen=True)
class PrefixCacheStats:
    """What the cache holds and how it served (exported as metrics)."""

    capacity_bytes: int = 0
    bytes: int = 0
    entries: int = 0
    hits: int = 0
    misses: int = 0
    restored_tokens: int = 0
    restore_failures: int = 0
    saved: int = 0
    # Cumulative counts per bucket of RESTORE_BUCKETS (then +Inf), and the sum of seconds.
    restore_buckets: tuple[int, ...] = (0,) * (len(RESTORE_BUCKETS) + 1)
    restore_seconds: float = 0.0


@dataclass(slots=True, eq=False)
class _Node:
    children: dict[int, _Node]
    entries: set[Entry]  # entries whose tokens pass through (or end at) this node
    ending: Entry | None  # the entry whose tokens end exactly here

    @classmethod
    def empty(cls) -> _Node:
        return cls({}, set(), None)


class PrefixCache:
    """Whole-sequence KV states keyed by tokens, bounded by `capacity_bytes` (LRU)."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._root = _Node.empty()
        self._lru: OrderedDict[Entry, None] = OrderedDict()
        self._bytes = 0
        # Counters; bytes and entries are filled in by `stats`. Replaced, never mutated, so
        # that a reader on another thread always sees one consistent snapshot.
        self._stats = PrefixCacheStats(capacity_bytes=capacity_bytes)

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._lru)

    def lookup(
        self,
        prompt: list[int],
        limit: int,
        *,
        window: int | None = None,
        whole_only: bool = False,
    ) -> Match | None:
        """The entry sharing the longest prefix with `prompt` (at most `limit` tokens), marked
        recently used. An entry may be cut back to the shared prefix only if it is at most
        `window` tokens long (None: any length) or loses at most its last token: a state saved
        from a sliding-window cache holds only the last `window` positions of those layers, so
        a deeper cut would leave them without cells the next token attends to. `whole_only`:
        never cut (a cache that cannot drop a restored sequence's tail)."""
        node, depth, best = self._root, 0, None
        for token in prompt[: max(0, limit)]:
            child = node.children.get(token)
            if child is None:
                break
            node, depth = child, depth + 1
            if node.ending is not None:
                best = Match(node.ending, depth)
        if not whole_only and depth > 0:
            longest = depth + 1 if window is None else max(window, depth + 1)
            cuttable = [e for e in node.entries if window is None or len(e.tokens) <= longest]
            if cuttable:
                # The smallest entry through the deepest node: the least to copy and to cut.
                best = Match(min(cuttable, key=lambda e: len(e.tokens)), depth)
        if best is not None:
            self._lru.move_to_end(best.entry)
        return best

    def covers(self, tokens: list[int]) -> bool:
        """Whether an entry already holds every one of `tokens` (saving them adds nothing)."""
        node = self._root
        for token in tokens:
            child = node.children.get(token)
            if child is None:
                return False
            node = child
        return bool(node.entries)

    def add(self, tokens: list[int], blob: bytearray) -> Entry | None:
        """File a sequence's state; entries it makes redundant (its prefixes) go, and the
        least recently used ones while over capacity. None if it alone is over capacity."""
        if not tokens or len(blob) > self.capacity_bytes or self.covers(tokens):
            return None
        entry = Entry(tuple(tokens), blob)
        node = self._root
        redundant = []
        for token in tokens:
            node = node.children.setdefault(token, _Node.empty())
            node.entries.add(entry)
            if node.ending is not None:
                redundant.append(node.ending)
        node.ending = entry
        for old in redundant:
            self.discard(old)
        self._lru[entry] = None
        self._bytes += entry.size
        self._stats = replace(self._stats, saved=self._stats.saved + 1)
        while self._bytes > self.capacity_bytes:
            self.discard(next(iter(self._lru)))
        return entry

    def discard(self, entry: Entry) -> None:
        """Forget an entry (evicted, superseded, or refused by llama.cpp on restore)."""
        if entry not in self._lru:
            return
        del self._lru[entry]
        self._bytes -= entry.size
        path = [self._root]
        for token in entry.tokens:
            path.append(path[-1].children[token])
        path[-1].ending = None
        for depth in range(len(entry.tokens), 0, -1):
            node = path[depth]
            node.entries.discard(entry)
            if not node.entries:
                del path[depth - 1].children[entry.tokens[depth - 1]]

    def record_restore(self, tokens: int, seconds: float) -> None:
        """A restore of `tokens` prefix tokens took `seconds`."""
        stats = self._stats
        first = bisect.bisect_left(RESTORE_BUCKETS, seconds)
        self._stats = replace(
            stats,
            hits=stats.hits + 1,
            restored_tokens=stats.restored_tokens + tokens,
            restore_seconds=stats.restore_seconds + seconds,
            # Cumulative: every bucket from the first one the time fits in counts it.
            restore_buckets=tuple(
                count + (index >= first) for index, count in enumerate(stats.restore_buckets)
            ),
        )

    def record_miss(self) -> None:
        self._stats = replace(self._stats, misses=self._stats.misses + 1)

    def record_failure(self, entry: Entry) -> None:
        """llama.cpp refused the entry's state: it is dropped, never offered again."""
        self._stats = replace(self._stats, restore_failures=self._stats.restore_failures + 1)
        self.discard(entry)

    def stats(self) -> PrefixCacheStats:
        return replace(self._stats, bytes=self._bytes, entries=len(self._lru))

"""KV-cache slots (llama.cpp sequence ids) and prefix reuse.

Each slot remembers which tokens its KV cells hold. A finished sequence leaves its slot idle
but keeps the cells, so that the next request starting with the same tokens (a conversation's
next turn, a shared system prompt) skips recomputing them; idle cells are evicted, least
recently used first, as soon as a new sequence needs the room. A request can also start from
the prefix of a *running* sequence: the cells are shared (`seq_cp` on a unified cache).

With a host-memory `PrefixCache`, cells about to be dropped are first copied to RAM, and a
prompt whose longest cached prefix is there rather than in the context gets it written back
(`prefix_cache`).

Cell accounting is conservative: a running sequence reserves prompt + max_tokens cells up
front, so `llama_decode` never runs out of room mid-generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from llm_server.engine.prefix_cache import PrefixCache

# Sharing a running sequence's prefix costs a slot; below this many tokens it is not worth it.
MIN_SHARED_PREFIX = 16
# Shorter sequences are not copied to host memory, and a restore must win at least this many
# tokens over what the context holds: below it, reading the tokens costs about as much.
MIN_HOST_TOKENS = 64


class KvOps(Protocol):
    """The two llama.cpp memory operations the table needs (injected: testable without a model)."""

    def remove(self, slot: int, start: int) -> bool:
        """Drop the slot's cells from position `start` on; False if it cannot."""
        ...

    def copy(self, source: int, target: int, length: int) -> None:
        """Make `target` share `source`'s cells for positions [0, length)."""
        ...

    def save(self, slot: int) -> bytearray | None:
        """The slot's whole state as one blob; None if it cannot be read."""
        ...

    def restore(self, slot: int, blob: bytearray) -> bool:
        """Write a saved state into the (emptied) slot; False, leaving it empty, if refused."""
        ...


@dataclass
class Slot:
    index: int
    tokens: list[int] = field(default_factory=list)
    running: bool = False
    reservation: int = 0
    last_used: float = 0.0


@dataclass(frozen=True)
class Acquired:
    slot: Slot
    reused: int


def common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class SlotTable:
    """Hands out slots to sequences and keeps finished ones' cells while room allows."""

    def __init__(
        self,
        n_slots: int,
        kv_cells: int,
        ops: KvOps,
        host: PrefixCache | None = None,
        *,
        trimmable: bool = True,
        window: int | None = None,
    ) -> None:
        """`host`: the host-memory cache (None: off). `trimmable`: a restored state may be cut
        to a shorter prefix (False for sliding-window caches cut to their window, recurrent
        state). `window`: the model's sliding window, which bounds how deep a restored state
        may be cut (`PrefixCache.lookup`); None without sliding-window layers."""
        self.slots = [Slot(i) for i in range(n_slots)]
        self.kv_cells = kv_cells
        self._ops = ops
        self._host = host
        self._trimmable = trimmable
        self._window = window
        # Prompt tokens of admitted sequences found cached (context or host) and read afresh.
        self.reused_tokens = 0
        self.computed_tokens = 0

    def cells_in_use(self) -> int:
        return sum(s.reservation if s.running else len(s.tokens) for s in self.slots)

    def acquire(self, prompt: list[int], reservation: int, reuse_limit: int) -> Acquired | None:
        """A slot for a new sequence, reusing up to `reuse_limit` tokens of the longest cached
        prefix of `prompt` (in the context or in host memory); None if there is no room yet
        (the caller waits)."""
        acquired = self._acquire(prompt, reservation, reuse_limit)
        if acquired is not None:
            self.computed_tokens += len(prompt) - acquired.reused
        return acquired

    def _acquire(self, prompt: list[int], reservation: int, reuse_limit: int) -> Acquired | None:
        if reservation > self.kv_cells:
            return None
        usable = max(0, reuse_limit)
        best, best_length = self._best_in_context(prompt, usable)
        if self._host is not None and usable - best_length >= MIN_HOST_TOKENS:
            restored = self._from_host(prompt, reservation, usable, best_length)
            if restored is not None:
                return restored
            # A refused restore may have emptied slots: look again.
            best, best_length = self._best_in_context(prompt, usable)
        acquired = self._in_context(best, best_length, reservation)
        missed = acquired is not None and usable - acquired.reused >= MIN_HOST_TOKENS
        if missed and self._host is not None:
            self._host.record_miss()
        return acquired

    def _best_in_context(self, prompt: list[int], usable: int) -> tuple[Slot | None, int]:
        best, best_length = None, 0
        for slot in self.slots:
            length = min(common_prefix(slot.tokens, prompt), usable)
            if length > best_length and (not slot.running or length >= MIN_SHARED_PREFIX):
                best, best_length = slot, length
        return best, best_length

    def _in_context(self, best: Slot | None, reused: int, reservation: int) -> Acquired | None:
        """A slot starting from `reused` tokens of `best`'s cells (shared if it runs)."""
        target: Slot | None = best
        if best is None or best.running:
            target = self._take_idle(exclude=best)
        if target is None:
            return None
        if not self._make_room(
            reservation - (len(target.tokens) if not target.running else 0), keep=(target, best)
        ):
            return None
        if best is not None and best.running:
            self._clear(target)
            self._ops.copy(best.index, target.index, reused)
            target.tokens = best.tokens[:reused]
        elif reused < len(target.tokens):
            if len(target.tokens) - reused >= MIN_HOST_TOKENS:
                self._offload(target)  # the tail about to go may be another turn's history
            if self._ops.remove(target.index, reused):
                del target.tokens[reused:]
            else:
                self._clear(target)
                reused = 0
        target.running, target.reservation = True, reservation
        self.reused_tokens += reused
        return Acquired(target, reused)

    def release(self, slot: Slot, keep_cells: bool) -> None:
        """The sequence in `slot` ended; its cells stay cached unless `keep_cells` is False."""
        slot.running, slot.reservation, slot.last_used = False, 0, time.monotonic()
        if not keep_cells:
            # Even with no tokens recorded: a failed step may have left cells behind.
            self._ops.remove(slot.index, 0)
            slot.tokens = []

    def drop_after(self, slot: Slot, length: int) -> None:
        """Forget the slot's cells from position `length` on (guesses the model rejected)."""
        if not self._ops.remove(slot.index, length):
            raise RuntimeError("the KV cache cannot drop a sequence's last cells")
        del slot.tokens[length:]

    def _take_idle(self, exclude: Slot | None) -> Slot | None:
        idle = [s for s in self.slots if not s.running and s is not exclude]
        if not idle:
            return None
        # An empty slot first, else the one whose cells were used longest ago.
        return min(idle, key=lambda s: (bool(s.tokens), s.last_used))

    def _make_room(self, extra: int, keep: tuple[Slot, Slot | None]) -> bool:
        while self.cells_in_use() + extra > self.kv_cells:
            victims = [s for s in self.slots if not s.running and s.tokens and s not in keep]
            if not victims:
                return False
            self._clear(min(victims, key=lambda s: s.last_used))
        return True

    def _clear(self, slot: Slot) -> None:
        if slot.tokens:
            self._offload(slot)
            self._ops.remove(slot.index, 0)
            slot.tokens = []

    def _offload(self, slot: Slot) -> None:
        """Copy an idle slot's state to host memory, unless short or already held there."""
        host = self._host
        if host is None or len(slot.tokens) < MIN_HOST_TOKENS or host.covers(slot.tokens):
            return
        blob = self._ops.save(slot.index)
        if blob is not None:
            host.add(slot.tokens, blob)

    def _from_host(
        self, prompt: list[int], reservation: int, usable: int, in_context: int
    ) -> Acquired | None:
        """A slot holding the prompt's longest prefix from host memory, if that beats the
        context's by enough; None to go on without it (nothing better, no room, refused)."""
        host = self._host
        assert host is not None
        match = host.lookup(prompt, usable, window=self._window, whole_only=not self._trimmable)
        if match is None or match.length < in_context + MIN_HOST_TOKENS:
            return None
        entry = match.entry
        target = self._take_idle(exclude=None)
        if target is None or max(reservation, len(entry.tokens)) > self.kv_cells:
            return None
        self._clear(target)
        if not self._make_room(max(reservation, len(entry.tokens)), keep=(target, None)):
            return None
        started = time.perf_counter()
        if not self._ops.restore(target.index, entry.blob):
            host.record_failure(entry)
            return None
        target.tokens = list(entry.tokens)
        if match.length < len(target.tokens) and not self._ops.remove(target.index, match.length):
            self._clear(target)
            return None
        del target.tokens[match.length :]
        host.record_restore(match.length, time.perf_counter() - started)
        target.running, target.reservation = True, reservation
        self.reused_tokens += match.length
        return Acquired(target, match.length)

"""Continuous batching: every active request is a sequence of one llama.cpp context.

One worker thread owns the context. Each step the planner (`planner`) picks the next token of
every running sequence plus chunks of prompts still being read (chunked prefill under a
per-step token budget, so a long prompt never stalls the streams) and guessed next tokens
that pad the step to the CPU kernels' tile height (`drafts`); the executor (`executor`) decodes
that batch with one `llama_decode` (llama.cpp releases the GIL) and gives each row of logits to
its sequence's strategy (`strategy`: generate samples and streams, score reads
log-probabilities). Tokens reach the event loop once per step. Sequences that finish or are
cancelled leave the batch and free their KV cells at once; waiting ones are admitted fairly
across clients from a bounded queue.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp

from llm_server.engine.base import EngineLoad
from llm_server.engine.drafts import index_for
from llm_server.engine.errors import EngineBusyError, EngineUnavailableError
from llm_server.engine.executor import (
    StepExecutor,
    create_context,
    drafting_allowed,
    tails_droppable,
)
from llm_server.engine.fair_queue import FairQueue
from llm_server.engine.model import LoadedModel
from llm_server.engine.outputs import TokenOutputs
from llm_server.engine.planner import PlanLimits, StepPlanner
from llm_server.engine.prefix_cache import PrefixCache, PrefixCacheStats
from llm_server.engine.sampling import Sampler, free_sampler
from llm_server.engine.sequence import Sequence
from llm_server.engine.slots import SlotTable
from llm_server.engine.types import Finished, FinishReason, SamplingParams

logger = logging.getLogger("llm_server.engine")


@dataclass(frozen=True)
class SchedulerLimits:
    max_running: int
    max_queue: int
    step_tokens: int
    ubatch_tokens: int
    kv_cells: int
    request_timeout_s: float
    swa_full: bool = True
    flash_attention: bool = True
    prefill_chunk_tokens: int = 64
    batch_multiple: int = 4
    prefix_cache_bytes: int = 0  # host memory for evicted sequences' KV states; 0: off


class Scheduler:
    """Owns the llama.cpp context and the worker thread that decodes every sequence."""

    def __init__(
        self,
        model: LoadedModel,
        limits: SchedulerLimits,
        n_threads: int,
        make_sampler: Callable[[SamplingParams], Sampler],
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        """`flush` is called once per step, after the step's events were emitted: the engine
        hands them to the event loop in one wake-up instead of one per token."""
        self._model = model
        self._flush = flush
        self._limits = limits
        self._make_sampler = make_sampler
        ctx = self._ctx = create_context(model, limits, n_threads)
        self._drafting = drafting_allowed(model, limits)
        self._planner = StepPlanner(
            PlanLimits(
                step_tokens=limits.step_tokens,
                ubatch_tokens=limits.ubatch_tokens,
                prefill_chunk_tokens=limits.prefill_chunk_tokens,
                batch_multiple=limits.batch_multiple,
                drafting=self._drafting,
            )
        )
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._cond = threading.Condition()
        self._waiting: FairQueue[Sequence] = FairQueue()
        self._running: list[Sequence] = []
        self._host = PrefixCache(limits.prefix_cache_bytes) if limits.prefix_cache_bytes else None
        self._slots = SlotTable(
            2 * limits.max_running,
            limits.kv_cells,
            _LlamaKv(ctx, self._memory),
            self._host,
            trimmable=tails_droppable(model, limits),
            window=int(llama_cpp.llama_model_n_swa(model.model)) or None,
        )
        self._accepting = True
        self._stopped = False
        self._outputs = TokenOutputs(ctx, model.vocab, self._finish, self._slots.drop_after)
        self._executor = StepExecutor(ctx, limits.step_tokens, self._outputs, self._finish)
        # Started by the first submit, from the event loop's thread: a thread inherits the
        # priority of the one that starts it, and models are loaded at a lower one (the
        # registry's loader) so that loading never starves other models' decoding.
        self._thread = threading.Thread(target=self._run, name="llama-scheduler", daemon=True)

    # ------------------------------------------------------------------ public, any thread
    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence; raises `EngineBusyError` or `EngineUnavailableError`."""
        with self._cond:
            if not self._accepting:
                raise EngineUnavailableError("the server is shutting down")
            outstanding = len(self._running) + len(self._waiting)
            if outstanding >= self._limits.max_running + self._limits.max_queue:
                raise EngineBusyError("the server is busy: too many requests waiting")
            sequence.submitted_at = time.monotonic()
            sequence.deadline = sequence.submitted_at + self._limits.request_timeout_s
            self._waiting.push(sequence.client, sequence)
            if self._thread.ident is None:
                self._thread.start()
            self._cond.notify()

    def cancel(self, sequence: Sequence) -> None:
        sequence.cancelled.set()
        with self._cond:
            self._cond.notify()

    def load(self) -> EngineLoad:
        with self._cond:
            return EngineLoad(
                running=len(self._running),
                queued=len(self._waiting),
                prefix_tokens_reused=self._slots.reused_tokens,
                prefix_tokens_computed=self._slots.computed_tokens,
                draft_tokens=self._outputs.drafted,
                draft_tokens_accepted=self._outputs.accepted,
                prefix_cache=self._host.stats() if self._host is not None else PrefixCacheStats(),
            )

    def close(self, drain_timeout_s: float) -> None:
        """Refuse new work, let running work finish within the timeout, cut the rest, free."""
        with self._cond:
            self._accepting = False
            self._cond.notify()
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline:
            load = self.load()
            if not load.running and not load.queued:
                break
            time.sleep(0.05)
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.ident is not None:
            self._thread.join(timeout=30)
        self._executor.close()
        llama_cpp.llama_free(self._ctx)

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        while True:
            with self._cond:
                self._admit_locked()
                while not self._running and not self._stopped:
                    self._flush()
                    self._cond.wait()
                    self._admit_locked()
                if self._stopped:
                    for sequence in [*self._running, *self._waiting.clear()]:
                        self._finish(sequence, "error", "the server is shutting down")
                    self._flush()
                    return
            try:
                self._step()
            except Exception:  # never let one bad step kill the engine
                logger.exception("decode step failed")
                for sequence in list(self._running):
                    self._finish(sequence, "error", "internal engine error")
            finally:
                self._flush()

    def _admit_locked(self) -> None:
        """Admit waiting sequences, fairly across clients, while slots and KV cells allow."""
        while len(self._running) < self._limits.max_running:
            head = self._waiting.head()
            if head is None:
                return
            if head.cancelled.is_set():
                self._waiting.pop_head(next_turn=False)
                head.emit(Finished("cancelled", len(head.prompt), 0))
                continue
            acquired = self._slots.acquire(head.prompt, head.reservation, head.reuse_limit)
            if acquired is None:
                return  # wait for cells; admitting smaller ones first could starve this one
            head.slot, head.n_past, head.reused = acquired.slot, acquired.reused, acquired.reused
            head.queued_s = time.monotonic() - head.submitted_at
            self._waiting.pop_head()
            self._start(head)

    def _start(self, sequence: Sequence) -> None:
        assert sequence.slot is not None
        try:
            sequence.strategy.prepare(sequence, self._make_sampler)
        except ValueError as exc:
            self._slots.release(sequence.slot, keep_cells=True)
            sequence.emit(Finished("error", len(sequence.prompt), 0, error=str(exc)))
            return
        self._running.append(sequence)

    def _finish(self, sequence: Sequence, reason: FinishReason, error: str | None = None) -> None:
        if sequence in self._running:
            self._running.remove(sequence)
            assert sequence.slot is not None
            # The cells stay cached for the next request with the same prefix, unless a failed
            # decode left them in doubt.
            self._slots.release(sequence.slot, keep_cells=reason != "error")
        if sequence.sampler is not None:
            free_sampler(sequence.sampler)
            sequence.sampler = None
        sequence.emit(sequence.strategy.last_event(sequence, reason, error))

    def _step(self) -> None:
        now = time.monotonic()
        for sequence in list(self._running):
            if sequence.cancelled.is_set():
                self._finish(sequence, "cancelled")
            elif now > sequence.deadline:
                self._finish(sequence, "timeout", "the request timed out")
        if not self._running:
            return
        if self._drafting:
            for sequence in self._running:
                # Indexed here rather than on admission, which holds the lock submit() takes.
                if sequence.drafter is None and sequence.strategy.drafts:
                    sequence.drafter = index_for(sequence.prompt)
        self._executor.run(self._planner.plan(self._running))


class _LlamaKv:
    """`KvOps` on a llama.cpp context and its memory."""

    def __init__(self, ctx: llama_cpp.llama_context_p, memory: llama_cpp.llama_memory_t) -> None:
        self._ctx = ctx
        self._memory = memory

    def remove(self, slot: int, start: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self._memory, slot, start, -1))

    def copy(self, source: int, target: int, length: int) -> None:
        llama_cpp.llama_memory_seq_cp(self._memory, source, target, 0, length)

    def save(self, slot: int) -> bytearray | None:
        # One pass over the slot's cells into a buffer Python owns (llama.cpp sizes it first).
        size = llama_cpp.llama_state_seq_get_size(self._ctx, slot)
        if size <= 0:
            return None
        blob = bytearray(size)
        view = (ctypes.c_uint8 * size).from_buffer(blob)
        written = llama_cpp.llama_state_seq_get_data(self._ctx, view, size, slot)
        del view  # a live view would pin the bytearray's size
        return blob if written == size else None

    def restore(self, slot: int, blob: bytearray) -> bool:
        view = (ctypes.c_uint8 * len(blob)).from_buffer(blob)
        read = llama_cpp.llama_state_seq_set_data(self._ctx, view, len(blob), slot)
        del view
        if read != len(blob):
            # Refused (0) or not the whole blob: whatever part llama.cpp wrote is dropped.
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            return False
        return True

"""Continuous batching: every active request is a sequence of one llama.cpp context.

One worker thread owns the context. Each step it builds one batch holding the next token of
every running sequence plus chunks of prompts still being read (chunked prefill under a
per-step token budget, so a long prompt never stalls the streams), calls `llama_decode` once
(llama.cpp releases the GIL), samples each sequence with its own sampler and hands the tokens
to the event loop. A step whose rows with logits are not a multiple of the CPU kernels' tile
height is padded with guessed next tokens (see `drafts`), which the sampler confirms or drops.
Sequences that finish or are cancelled leave the batch and free their KV cells at once;
waiting ones are admitted fairly across clients from a bounded queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp

from llm_server.engine.base import EngineLoad
from llm_server.engine.drafts import Candidate, assign, index_for, padding
from llm_server.engine.fair_queue import FairQueue
from llm_server.engine.model import LoadedModel
from llm_server.engine.outputs import TokenOutputs
from llm_server.engine.sampling import Sampler, free_sampler
from llm_server.engine.sequence import Sequence
from llm_server.engine.slots import Slot, SlotTable
from llm_server.engine.stops import StopMatcher
from llm_server.engine.types import (
    Finished,
    FinishReason,
    SamplingParams,
)

logger = logging.getLogger("llm_server.engine")

# Logits are 4 bytes x vocabulary per output row (about 1 MB for Gemma's 262k tokens): cap
# the rows one step may ask for when scoring a whole text.
MAX_SCORED_ROWS_PER_STEP = 32


class SchedulerQueueFullError(Exception):
    """The waiting queue is at its bound."""


class SchedulerClosedError(Exception):
    """The scheduler is closing."""


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
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = limits.kv_cells
        params.n_batch = limits.step_tokens
        params.n_ubatch = min(limits.step_tokens, limits.ubatch_tokens)
        # Twice the running sequences: finished ones keep their cells for prefix reuse.
        params.n_seq_max = 2 * limits.max_running
        # Logits are only read for each running sequence's next token and for the rows a
        # scored text needs: sizing the output for that (not for n_batch rows of Gemma's 262k
        # vocabulary) saves hundreds of MB of compute buffer.
        # Guesses add fewer than batch_multiple rows; llama.cpp also wants room for one row
        # per sequence id.
        params.n_outputs_max = max(
            limits.max_running + MAX_SCORED_ROWS_PER_STEP + limits.batch_multiple,
            params.n_seq_max,
        )
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = True  # one pool of cells: any sequence may use what others leave
        # Gemma 3's sliding-window layers would otherwise keep only their last window of cells,
        # and a cached prefix longer than the window could not be reused.
        params.swa_full = limits.swa_full
        params.no_perf = True
        # Flash attention prefills a 1,500-token prompt in 1.8 s instead of 7.8 s here, but
        # its results depend on how batches are cut (Gemma 3 270M is numerically touchy: even
        # f16 against f32 KV moves a log-probability by 0.9). Without it, prefix reuse gives
        # bit-for-bit the tokens of a fresh computation; batching beside other sequences still
        # moves log-probabilities by up to ~0.2 either way (batch-shape-dependent matmul paths).
        params.flash_attn_type = 1 if limits.flash_attention else 0
        ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self._ctx = ctx
        # Guesses need a cache that can drop a sequence's last cells (recurrent state cannot)
        # and that keeps every cell of the sequence meanwhile: a sliding-window cache cut to
        # its window may give a guess's cell the place of one the next token still needs.
        self._drafting = (
            limits.batch_multiple > 1
            and (limits.swa_full or llama_cpp.llama_model_n_swa(model.model) == 0)
            and not llama_cpp.llama_model_is_recurrent(model.model)
            and not llama_cpp.llama_model_is_hybrid(model.model)
        )
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(limits.step_tokens, 0, 1)
        self._cond = threading.Condition()
        self._waiting: FairQueue[Sequence] = FairQueue()
        self._running: list[Sequence] = []
        self._slots = SlotTable(2 * limits.max_running, limits.kv_cells, _LlamaKv(self._memory))
        self._accepting = True
        self._stopped = False
        self._outputs = TokenOutputs(ctx, model.vocab, self._finish, self._slots.drop_after)
        self._thread = threading.Thread(target=self._run, name="llama-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public, any thread
    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence; raises `SchedulerQueueFullError` or `SchedulerClosedError`."""
        with self._cond:
            if not self._accepting:
                raise SchedulerClosedError
            outstanding = len(self._running) + len(self._waiting)
            if outstanding >= self._limits.max_running + self._limits.max_queue:
                raise SchedulerQueueFullError
            sequence.submitted_at = time.monotonic()
            sequence.deadline = sequence.submitted_at + self._limits.request_timeout_s
            self._waiting.push(sequence.client, sequence)
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
                draft_tokens=self._outputs.drafted,
                draft_tokens_accepted=self._outputs.accepted,
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
        self._thread.join(timeout=30)
        llama_cpp.llama_batch_free(self._batch)
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
        if sequence.params is not None:
            try:
                sequence.sampler = self._make_sampler(sequence.params)
            except ValueError as exc:
                self._slots.release(sequence.slot, keep_cells=True)
                sequence.emit(Finished("error", len(sequence.prompt), 0, error=str(exc)))
                return
            sequence.stop = StopMatcher(sequence.params.stop)
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
        if sequence.kind == "score" and reason != "error":
            sequence.emit(sequence.scored)
        else:
            prompt = len(sequence.prompt)
            sequence.emit(
                Finished(
                    reason,
                    prompt,
                    sequence.generated,
                    sequence.reused,
                    error=error,
                    queued_s=sequence.queued_s,
                )
            )

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
                if sequence.drafter is None and sequence.kind == "generate":
                    sequence.drafter = index_for(sequence.prompt)
        batch = self._batch
        outputs: list[tuple[Sequence, int]] = []
        n = 0

        def add(token: int, position: int, slot: Slot, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = position
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.index
            batch.logits[n] = logits
            n += 1

        decoding = [s for s in self._running if not s.prefilling]
        for sequence in decoding:
            assert sequence.pending_token is not None
            assert sequence.slot is not None
            add(sequence.pending_token, sequence.n_past, sequence.slot, True)
            outputs.append((sequence, n - 1))
        advanced: list[tuple[Sequence, int]] = [(s, 1) for s in decoding]
        # While streams are decoding, a long prompt is read a chunk a step so that no stream's
        # next token waits for a whole prefill: one chunk keeps a stream's gaps within ~3x their
        # median. Once long prompts are at least half as many as the decoding streams, the
        # people waiting for a first answer count as much as smooth streams: prompts are read in
        # whole steps, the oldest first, as when nothing decodes (a 512-token step reads a
        # prompt at ~1 ms a token, chunk-sized steps at ~3). Short prompts (chat turns) are read
        # whole in the room the step has left: their first token comes sooner.
        chunk = self._limits.prefill_chunk_tokens
        budget = self._limits.step_tokens - n
        long_waiting = sum(1 for s in self._running if s.prefilling and len(s.prompt) > 2 * chunk)
        if not decoding:
            long_budget = budget
        elif 2 * long_waiting < len(decoding):
            long_budget = chunk
        else:  # whole steps, but no longer than one llama.cpp piece while streams wait
            long_budget = self._limits.ubatch_tokens
        score_rows = MAX_SCORED_ROWS_PER_STEP  # shared by every scored text in this step
        for sequence in self._running:
            if budget <= 0:
                break
            if not sequence.prefilling:
                continue
            start = sequence.n_past
            end = min(len(sequence.prompt), start + budget)
            long = decoding and len(sequence.prompt) > 2 * chunk
            if long:
                end = min(end, start + long_budget)
            if sequence.kind == "score":
                # Rows with logits: positions from score_from - 1 on predict the next token.
                first_row = max(start, sequence.score_from - 1)
                end = min(end, first_row + score_rows)
                score_rows -= max(0, min(end, len(sequence.prompt) - 1) - first_row)
            if end <= start:
                continue
            assert sequence.slot is not None
            for position in range(start, end):
                if sequence.kind == "score":
                    wants = sequence.score_from - 1 <= position < len(sequence.prompt) - 1
                else:
                    wants = position == len(sequence.prompt) - 1
                add(sequence.prompt[position], position, sequence.slot, wants)
                if wants:
                    outputs.append((sequence, n - 1))
            advanced.append((sequence, end - start))
            budget -= end - start
            if long:
                long_budget -= end - start
        drafts: dict[Sequence, list[tuple[int, int]]] = {}
        pad = padding(len(outputs), self._limits.batch_multiple, self._limits.step_tokens - n)
        pad = pad if self._drafting else 0
        sampling = [s for s, _ in outputs if s.kind == "generate"]  # one row each
        for sequence, guesses in self._plan_drafts(sampling, pad).items():
            assert sequence.slot is not None
            first = len(sequence.prompt) if sequence.prefilling else sequence.n_past + 1
            rows = drafts[sequence] = []
            for offset, guess in enumerate(guesses):
                add(guess, first + offset, sequence.slot, True)
                rows.append((guess, n - 1))
        batch.n_tokens = n
        if n == 0:
            return
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            # llama.cpp rolls back only the failed piece of a step: the slots of the sequences
            # in it are cleared whole (an "error" finish keeps no cells).
            failed = {s for s, _ in advanced}
            for sequence in failed:
                self._finish(sequence, "error", f"llama_decode failed ({status})")
            return
        for sequence, count in advanced:
            assert sequence.slot is not None
            if sequence.prefilling:
                sequence.slot.tokens.extend(
                    sequence.prompt[sequence.n_past : sequence.n_past + count]
                )
            else:
                assert sequence.pending_token is not None
                sequence.slot.tokens.append(sequence.pending_token)
            sequence.n_past += count
        for sequence, index in outputs:
            if sequence.kind == "score":
                self._outputs.score(sequence, index)
            elif sequence in drafts:
                self._outputs.verify(sequence, index, drafts[sequence])
            else:
                self._outputs.sample(sequence, index)
        for sequence in list(self._running):
            if sequence.kind == "score" and not sequence.prefilling:
                self._finish(sequence, "stop")

    def _plan_drafts(self, sequences: list[Sequence], pad: int) -> dict[Sequence, list[int]]:
        """`pad` guessed next tokens, spread over the sequences that sample this step."""
        if pad <= 0:
            return {}
        candidates: list[Candidate] = []
        for key, sequence in enumerate(sequences):
            assert sequence.params is not None
            assert sequence.drafter is not None
            # Guesses past max_tokens would never be used.
            limit = min(pad, sequence.params.max_tokens - sequence.generated - 1)
            if limit > 0:
                guesses, strength = sequence.drafter.propose(limit)
                candidates.append(Candidate(key, guesses, strength))
        return {sequences[key]: guesses for key, guesses in assign(candidates, pad).items()}


class _LlamaKv:
    """`KvOps` on a llama.cpp memory."""

    def __init__(self, memory: llama_cpp.llama_memory_t) -> None:
        self._memory = memory

    def remove(self, slot: int, start: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self._memory, slot, start, -1))

    def copy(self, source: int, target: int, length: int) -> None:
        llama_cpp.llama_memory_seq_cp(self._memory, source, target, 0, length)

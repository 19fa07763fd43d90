"""Continuous batching: every active request is a sequence of one llama.cpp context.

One worker thread owns the context. Each step it builds one batch holding the next token of
every running sequence plus chunks of prompts still being read (chunked prefill under a
per-step token budget, so a long prompt never stalls the streams), calls `llama_decode` once
(llama.cpp releases the GIL), samples each sequence with its own sampler and hands the tokens
to the event loop. Sequences that finish or are cancelled leave the batch and free their KV
cells at once; waiting ones are admitted fairly across clients from a bounded queue.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import llama_cpp

from llm_server.engine.model import LoadedModel
from llm_server.engine.sampling import Sampler, free_sampler, log_softmax_row, top_indices
from llm_server.engine.stops import StopMatcher
from llm_server.engine.types import (
    Finished,
    FinishReason,
    GenerationEvent,
    SamplingParams,
    ScoredToken,
    TokenOut,
    TopLogprob,
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
    kv_cells: int
    request_timeout_s: float


@dataclass(eq=False)
class Sequence:
    """One request's state inside the scheduler. Only the worker thread mutates it."""

    kind: Literal["generate", "score"]
    prompt: list[int]
    emit: Callable[[GenerationEvent | list[ScoredToken]], None]
    client: str
    params: SamplingParams | None = None
    score_from: int = 1
    score_top_k: int = 0
    deadline: float = 0.0
    sampler: Sampler | None = None
    slot: int = -1
    n_past: int = 0
    pending_token: int | None = None
    generated: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    stop: StopMatcher | None = None
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    scored: list[ScoredToken] = field(default_factory=list)

    @property
    def reservation(self) -> int:
        extra = self.params.max_tokens if self.params is not None else 0
        return len(self.prompt) + extra

    @property
    def prefilling(self) -> bool:
        return self.n_past < len(self.prompt)


class Scheduler:
    """Owns the llama.cpp context and the worker thread that decodes every sequence."""

    def __init__(
        self,
        model: LoadedModel,
        limits: SchedulerLimits,
        n_threads: int,
        make_sampler: Callable[[SamplingParams], Sampler],
    ) -> None:
        self._model = model
        self._limits = limits
        self._make_sampler = make_sampler
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(model.vocab)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = limits.kv_cells
        params.n_batch = limits.step_tokens
        params.n_ubatch = limits.step_tokens
        params.n_seq_max = limits.max_running
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = True  # one pool of cells: any sequence may use what others leave
        params.swa_full = False  # Gemma 3's sliding-window layers keep only their window
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(limits.step_tokens, 0, 1)
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[Sequence]] = {}
        self._rotation: deque[str] = deque()
        self._n_waiting = 0
        self._running: list[Sequence] = []
        self._free_slots = list(range(limits.max_running - 1, -1, -1))
        self._reserved = 0
        self._accepting = True
        self._stopped = False
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._thread = threading.Thread(target=self._run, name="llama-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public, any thread
    def submit(self, sequence: Sequence) -> None:
        """Queue a sequence; raises `SchedulerQueueFullError` or `SchedulerClosedError`."""
        with self._cond:
            if not self._accepting:
                raise SchedulerClosedError
            if (
                self._n_waiting >= self._limits.max_queue
                and len(self._running) >= self._limits.max_running
            ):
                raise SchedulerQueueFullError
            sequence.deadline = time.monotonic() + self._limits.request_timeout_s
            queue = self._waiting.get(sequence.client)
            if queue is None:
                queue = self._waiting[sequence.client] = deque()
                self._rotation.append(sequence.client)
            queue.append(sequence)
            self._n_waiting += 1
            self._cond.notify()

    def cancel(self, sequence: Sequence) -> None:
        sequence.cancelled.set()
        with self._cond:
            self._cond.notify()

    def load(self) -> tuple[int, int]:
        """(running sequences, waiting sequences)."""
        with self._cond:
            return len(self._running), self._n_waiting

    def close(self, drain_timeout_s: float) -> None:
        """Refuse new work, let running work finish within the timeout, cut the rest, free."""
        with self._cond:
            self._accepting = False
            self._cond.notify()
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline:
            running, waiting = self.load()
            if not running and not waiting:
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
                    self._cond.wait()
                    self._admit_locked()
                if self._stopped:
                    for sequence in [*self._running, *self._drain_waiting_locked()]:
                        self._finish(sequence, "error", "the server is shutting down")
                    return
            try:
                self._step()
            except Exception:  # never let one bad step kill the engine
                logger.exception("decode step failed")
                for sequence in list(self._running):
                    self._finish(sequence, "error", "internal engine error")

    def _drain_waiting_locked(self) -> list[Sequence]:
        drained = [s for queue in self._waiting.values() for s in queue]
        self._waiting.clear()
        self._rotation.clear()
        self._n_waiting = 0
        return drained

    def _admit_locked(self) -> None:
        """Admit waiting sequences round-robin across clients while slots and KV cells allow."""
        while self._rotation and self._free_slots:
            client = self._rotation[0]
            queue = self._waiting[client]
            head = queue[0]
            if head.cancelled.is_set():
                queue.popleft()
                self._n_waiting -= 1
                self._forget_client_if_empty(client)
                head.emit(Finished("cancelled", len(head.prompt), 0))
                continue
            if self._reserved + head.reservation > self._limits.kv_cells:
                return  # wait for cells; admitting smaller ones first could starve this one
            queue.popleft()
            self._n_waiting -= 1
            self._rotation.rotate(-1)
            self._forget_client_if_empty(client)
            self._start(head)

    def _forget_client_if_empty(self, client: str) -> None:
        if not self._waiting[client]:
            del self._waiting[client]
            self._rotation.remove(client)

    def _start(self, sequence: Sequence) -> None:
        if sequence.params is not None:
            try:
                sequence.sampler = self._make_sampler(sequence.params)
            except ValueError as exc:
                sequence.emit(Finished("error", len(sequence.prompt), 0, error=str(exc)))
                return
            sequence.stop = StopMatcher(sequence.params.stop)
        sequence.slot = self._free_slots.pop()
        self._reserved += sequence.reservation
        self._running.append(sequence)

    def _finish(self, sequence: Sequence, reason: FinishReason, error: str | None = None) -> None:
        if sequence in self._running:
            self._running.remove(sequence)
            llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
            self._free_slots.append(sequence.slot)
            self._reserved -= sequence.reservation
        if sequence.sampler is not None:
            free_sampler(sequence.sampler)
            sequence.sampler = None
        if sequence.kind == "score" and reason != "error":
            sequence.emit(sequence.scored)
        else:
            prompt = len(sequence.prompt)
            sequence.emit(Finished(reason, prompt, sequence.generated, error=error))

    def _step(self) -> None:
        now = time.monotonic()
        for sequence in list(self._running):
            if sequence.cancelled.is_set():
                self._finish(sequence, "cancelled")
            elif now > sequence.deadline:
                self._finish(sequence, "error", "the request timed out")
        if not self._running:
            return
        batch = self._batch
        outputs: list[tuple[Sequence, int]] = []
        n = 0

        def add(token: int, position: int, slot: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = position
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot
            batch.logits[n] = logits
            n += 1

        decoding = [s for s in self._running if not s.prefilling]
        for sequence in decoding:
            assert sequence.pending_token is not None
            add(sequence.pending_token, sequence.n_past, sequence.slot, True)
            outputs.append((sequence, n - 1))
        advanced: list[tuple[Sequence, int]] = [(s, 1) for s in decoding]
        budget = self._limits.step_tokens - n
        for sequence in self._running:
            if budget <= 0:
                break
            if not sequence.prefilling:
                continue
            start = sequence.n_past
            end = min(len(sequence.prompt), start + budget)
            if sequence.kind == "score":
                # Rows with logits: positions from score_from - 1 on predict the next token.
                first_row = max(start, sequence.score_from - 1)
                end = min(end, max(first_row, start) + MAX_SCORED_ROWS_PER_STEP)
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
        batch.n_tokens = n
        if n == 0:
            return
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            failed = {s for s, _ in advanced}
            for sequence in failed:
                self._finish(sequence, "error", f"llama_decode failed ({status})")
            return
        for sequence, count in advanced:
            sequence.n_past += count
        for sequence, index in outputs:
            if sequence.kind == "score":
                self._record_score(sequence, index)
            else:
                self._sample(sequence, index)
        for sequence in list(self._running):
            if sequence.kind == "score" and not sequence.prefilling:
                self._finish(sequence, "stop")

    def _record_score(self, sequence: Sequence, index: int) -> None:
        position = sequence.score_from + len(sequence.scored)
        token = sequence.prompt[position]
        logprobs = log_softmax_row(self._ctx, index, self._n_vocab)
        tops = tuple(
            TopLogprob(self._text(t), t, float(logprobs[t]))
            for t in top_indices(logprobs, sequence.score_top_k)
        )
        sequence.scored.append(ScoredToken(token, self._text(token), float(logprobs[token]), tops))

    def _sample(self, sequence: Sequence, index: int) -> None:
        params = sequence.params
        assert params is not None
        assert sequence.sampler is not None
        assert sequence.stop is not None
        token = llama_cpp.llama_sampler_sample(sequence.sampler, self._ctx, index)
        sequence.generated += 1
        logprob: float | None = None
        tops: tuple[TopLogprob, ...] = ()
        if params.logprobs is not None:
            logprobs = log_softmax_row(self._ctx, index, self._n_vocab)
            logprob = float(logprobs[token])
            tops = tuple(
                TopLogprob(self._text(t), t, float(logprobs[t]))
                for t in top_indices(logprobs, params.logprobs)
            )
        if llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
            held = sequence.stop.flush() + sequence.decoder.decode(b"", final=True)
            if held:
                sequence.emit(TokenOut(held, token, logprob, tops))
            self._finish(sequence, "stop")
            return
        text = sequence.decoder.decode(self._piece(token))
        text, stopped = sequence.stop.feed(text)
        if stopped:
            if text:
                sequence.emit(TokenOut(text, token, logprob, tops))
            self._finish(sequence, "stop")
            return
        if sequence.generated >= params.max_tokens:
            text += sequence.stop.flush() + sequence.decoder.decode(b"", final=True)
            sequence.emit(TokenOut(text, token, logprob, tops))
            self._finish(sequence, "length")
            return
        sequence.emit(TokenOut(text, token, logprob, tops))
        sequence.pending_token = token

    def _piece(self, token: int) -> bytes:
        buffer = self._piece_buffer
        size = llama_cpp.llama_token_to_piece(
            self._model.vocab, token, buffer, len(buffer), 0, False
        )
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._model.vocab, token, buffer, -size, 0, False)
        return bytes(buffer.raw[:size])

    def _text(self, token: int) -> str:
        return self._piece(token).decode("utf-8", errors="replace")

"""Carrying out a step plan on a llama.cpp context: the batch written, one `llama_decode`,
the KV cells committed, and each row of logits handed to its sequence's strategy."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import llama_cpp

from llm_server.engine.model import LoadedModel
from llm_server.engine.outputs import TokenOutputs
from llm_server.engine.planner import MAX_SCORED_ROWS_PER_STEP, StepPlan
from llm_server.engine.sequence import Sequence
from llm_server.engine.strategy import Drafts
from llm_server.engine.types import FinishReason

if TYPE_CHECKING:
    from llm_server.engine.scheduler import SchedulerLimits


def create_context(
    model: LoadedModel, limits: SchedulerLimits, n_threads: int
) -> llama_cpp.llama_context_p:
    """The one llama.cpp context every sequence shares."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = limits.kv_cells
    params.n_batch = limits.step_tokens
    params.n_ubatch = min(limits.step_tokens, limits.ubatch_tokens)
    # Twice the running sequences: finished ones keep their cells for prefix reuse.
    params.n_seq_max = 2 * limits.max_running
    # Logits are only read for each running sequence's next token, the guesses (fewer than
    # batch_multiple) and the rows a scored text needs: sizing the output for that, not for
    # n_batch rows of a large vocabulary, saves hundreds of MB of compute buffer. llama.cpp
    # also wants room for one row per sequence id.
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
    # Flash attention makes long prompts much faster to read, but its results depend on how
    # batches are cut; without it prefix reuse gives bit-for-bit the tokens of a fresh
    # computation (see the README).
    params.flash_attn_type = 1 if limits.flash_attention else 0
    ctx: llama_cpp.llama_context_p = llama_cpp.llama_init_from_model(model.model, params)
    if not ctx:
        raise RuntimeError("llama.cpp could not create a context (out of memory?)")
    return ctx


def drafting_allowed(model: LoadedModel, limits: SchedulerLimits) -> bool:
    """Whether steps may be padded with guesses. They need a cache that can drop a sequence's
    last cells and that keeps every cell of the sequence meanwhile (`tails_droppable`)."""
    return limits.batch_multiple > 1 and tails_droppable(model, limits)


def tails_droppable(model: LoadedModel, limits: SchedulerLimits) -> bool:
    """Whether a sequence's cells may be cut back to a shorter prefix and still be all the
    next token needs: recurrent state has no positions to cut, and a sliding-window cache cut
    to its window may have given older cells' places away (a guess's cell could take the
    place of one still needed; a state restored and then cut would miss the cells before the
    cut)."""
    return (
        (limits.swa_full or llama_cpp.llama_model_n_swa(model.model) == 0)
        and not llama_cpp.llama_model_is_recurrent(model.model)
        and not llama_cpp.llama_model_is_hybrid(model.model)
    )


class StepExecutor:
    """Runs step plans on one context, on the scheduler's worker thread."""

    def __init__(
        self,
        ctx: llama_cpp.llama_context_p,
        step_tokens: int,
        outputs: TokenOutputs,
        finish: Callable[[Sequence, FinishReason, str | None], None],
    ) -> None:
        """`finish` ends a sequence: a failed decode, or a scored text fully read."""
        self._ctx = ctx
        self._batch = llama_cpp.llama_batch_init(step_tokens, 0, 1)
        self._outputs = outputs
        self._finish = finish

    def run(self, plan: StepPlan) -> None:
        """Decode the plan's batch and hand out its logits."""
        if plan.tokens == 0:
            return
        rows, drafts = self._write(plan)
        status = llama_cpp.llama_decode(self._ctx, self._batch)
        if status != 0:
            # llama.cpp rolls back only the failed piece of a step: the slots of the sequences
            # in it are cleared whole (an "error" finish keeps no cells).
            for sequence in [*plan.decoding, *(p.sequence for p in plan.prefills)]:
                self._finish(sequence, "error", f"llama_decode failed ({status})")
            return
        self._commit(plan)
        outputs = self._outputs
        for sequence, row in rows:
            sequence.strategy.read(outputs, sequence, row, drafts.get(sequence))
        for prefill in plan.prefills:
            sequence = prefill.sequence
            if sequence.strategy.ends_with_prompt(sequence) and not sequence.prefilling:
                self._finish(sequence, "stop", None)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self._batch)

    def _write(self, plan: StepPlan) -> tuple[list[tuple[Sequence, int]], dict[Sequence, Drafts]]:
        """Fill the batch; the rows with logits of each sequence, and each one's guesses."""
        rows: list[tuple[Sequence, int]] = []
        n = 0
        for sequence in plan.decoding:
            assert sequence.pending_token is not None
            assert sequence.slot is not None
            self._row(n, sequence.pending_token, sequence.n_past, sequence.slot.index, True)
            rows.append((sequence, n))
            n += 1
        for prefill in plan.prefills:
            sequence = prefill.sequence
            assert sequence.slot is not None
            prompt, slot = sequence.prompt, sequence.slot.index
            low, high = prefill.logits_from, prefill.logits_to
            for position in range(prefill.start, prefill.end):
                wants = low <= position < high
                self._row(n, prompt[position], position, slot, wants)
                if wants:
                    rows.append((sequence, n))
                n += 1
        drafts: dict[Sequence, Drafts] = {}
        for draft in plan.drafts:
            sequence = draft.sequence
            assert sequence.slot is not None
            placed = drafts[sequence] = []
            for offset, guess in enumerate(draft.guesses):
                self._row(n, guess, draft.position + offset, sequence.slot.index, True)
                placed.append((guess, n))
                n += 1
        self._batch.n_tokens = n
        return rows, drafts

    def _row(self, n: int, token: int, position: int, slot: int, logits: bool) -> None:
        batch = self._batch
        batch.token[n] = token
        batch.pos[n] = position
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = slot
        batch.logits[n] = logits

    def _commit(self, plan: StepPlan) -> None:
        """The decoded tokens are now in their sequences' cells."""
        for sequence in plan.decoding:
            assert sequence.slot is not None
            assert sequence.pending_token is not None
            sequence.slot.tokens.append(sequence.pending_token)
            sequence.n_past += 1
        for prefill in plan.prefills:
            sequence = prefill.sequence
            assert sequence.slot is not None
            sequence.slot.tokens.extend(sequence.prompt[prefill.start : prefill.end])
            sequence.n_past = prefill.end

"""Planning one decode step: which tokens of which sequences go into the batch, which rows
get logits, and which guessed tokens fill the step. Pure: it reads the running sequences and
changes nothing, so it is tested without llama.cpp; `executor` carries the plan out.

While streams are decoding, a long prompt is read a chunk a step so that no stream's next
token waits for a whole prefill. Once long prompts are at least half as many as the decoding
streams, the people waiting for a first answer count as much as smooth streams: prompts are
read in whole steps, the oldest first, as when nothing decodes (a whole step reads a prompt
faster per token than chunk-sized steps). Short prompts (chat turns) are read whole in the
room the step has left: their first token comes sooner.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_server.engine.drafts import Candidate, assign, padding
from llm_server.engine.sequence import Sequence

# Logits are 4 bytes x vocabulary per output row (about 1 MB for Gemma's 262k tokens): cap
# the rows one step may ask for when scoring a whole text.
MAX_SCORED_ROWS_PER_STEP = 32


@dataclass(frozen=True)
class PlanLimits:
    step_tokens: int  # the most tokens one step decodes
    ubatch_tokens: int  # tokens llama.cpp computes at once inside a step
    prefill_chunk_tokens: int  # a long prompt's piece per step while streams decode
    batch_multiple: int  # rows with logits are padded to a multiple of this with guesses
    drafting: bool  # whether guesses are allowed at all (the cache can drop them)
    scored_rows: int = MAX_SCORED_ROWS_PER_STEP


@dataclass(slots=True)
class Prefill:
    """Prompt tokens [start, end) of a sequence; those in [logits_from, logits_to) get logits."""

    sequence: Sequence
    start: int
    end: int
    logits_from: int
    logits_to: int


@dataclass(slots=True)
class Draft:
    """Guessed next tokens of a sequence, from `position` on, each with its row of logits."""

    sequence: Sequence
    position: int
    guesses: list[int]


@dataclass(slots=True)
class StepPlan:
    """One step's batch: each decoding sequence's pending token (with logits), prompt chunks,
    then guesses; in that order of rows."""

    decoding: list[Sequence]
    prefills: list[Prefill]
    drafts: list[Draft]
    tokens: int


class StepPlanner:
    """Plans steps under the per-step token budget and the prefill policy."""

    def __init__(self, limits: PlanLimits) -> None:
        self._limits = limits

    def plan(self, running: list[Sequence]) -> StepPlan:
        """The next step for the running sequences (in admission order)."""
        decoding = [s for s in running if not s.prefilling]
        # Decoding rows sample first, in order; then prompts whose last token is in this step.
        sampling = list(decoding)
        prefills, rows = self._prefills(running, len(decoding), sampling)
        tokens = len(decoding) + sum(p.end - p.start for p in prefills)
        limits = self._limits
        pad = padding(len(decoding) + rows, limits.batch_multiple, limits.step_tokens - tokens)
        drafts = self._drafts(sampling, pad) if limits.drafting and pad > 0 else []
        tokens += sum(len(d.guesses) for d in drafts)
        return StepPlan(decoding, prefills, drafts, tokens)

    def _long_budget(self, decoding: int, long_waiting: int, budget: int) -> int:
        """Tokens of long prompts this step may read."""
        if not decoding:
            return budget
        if 2 * long_waiting < decoding:
            return self._limits.prefill_chunk_tokens
        # Whole steps, but no longer than one llama.cpp piece while streams wait.
        return self._limits.ubatch_tokens

    def _prefills(
        self, running: list[Sequence], decoding: int, sampling: list[Sequence]
    ) -> tuple[list[Prefill], int]:
        """Prompt chunks for this step, and how many of their rows get logits; a sequence
        whose prompt ends in this step and then samples joins `sampling`."""
        chunk = self._limits.prefill_chunk_tokens
        budget = self._limits.step_tokens - decoding
        long_waiting = sum(1 for s in running if s.prefilling and len(s.prompt) > 2 * chunk)
        long_budget = self._long_budget(decoding, long_waiting, budget)
        scored_rows = self._limits.scored_rows  # shared by every scored text in this step
        prefills: list[Prefill] = []
        rows = 0
        for sequence in running:
            if budget <= 0:
                break
            if not sequence.prefilling:
                continue
            start = sequence.n_past
            end = min(len(sequence.prompt), start + budget)
            long = decoding and len(sequence.prompt) > 2 * chunk
            if long:
                end = min(end, start + long_budget)
            strategy = sequence.strategy
            end, scored_rows = strategy.limit_rows(sequence, start, end, scored_rows)
            if end <= start:
                continue
            low, high = strategy.logits_range(sequence)
            prefills.append(Prefill(sequence, start, end, low, high))
            with_logits = max(0, min(end, high) - max(start, low))
            rows += with_logits
            if with_logits and strategy.drafts:
                sampling.append(sequence)
            budget -= end - start
            if long:
                long_budget -= end - start
        return prefills, rows

    def _drafts(self, sampling: list[Sequence], pad: int) -> list[Draft]:
        """`pad` guessed next tokens, spread over the sequences that sample this step."""
        candidates: list[Candidate] = []
        for key, sequence in enumerate(sampling):
            assert sequence.params is not None
            assert sequence.drafter is not None
            # Guesses past max_tokens would never be used.
            limit = min(pad, sequence.params.max_tokens - sequence.generated - 1)
            if limit > 0:
                guesses, strength = sequence.drafter.propose(limit)
                candidates.append(Candidate(key, guesses, strength))
        drafts = []
        for key, guesses in assign(candidates, pad).items():
            sequence = sampling[key]
            # The guesses follow the token this step samples for the sequence.
            first = len(sequence.prompt) if sequence.prefilling else sequence.n_past + 1
            drafts.append(Draft(sequence, first, guesses))
        return drafts

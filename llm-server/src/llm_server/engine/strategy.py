"""What a sequence does with the logits it gets: generate (draw the next token, stream it) or
score (read its own text's log-probabilities). The scheduler's planner and executor ask the
sequence's strategy instead of branching on a kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from llm_server.engine.stops import StopMatcher
from llm_server.engine.types import Finished, FinishReason, SamplingParams, ScoredToken

if TYPE_CHECKING:  # the planner imports this module and must not need llama.cpp
    from llm_server.engine.outputs import TokenOutputs
    from llm_server.engine.sampling import Sampler
    from llm_server.engine.sequence import Sequence

Drafts = list[tuple[int, int]]  # (guessed token, its batch row), in position order


class Strategy(Protocol):
    """How one kind of sequence is admitted, planned, fed its logits and ended."""

    # Guessed next tokens may follow its rows with logits (see `drafts`).
    drafts: bool

    def reservation(self, sequence: Sequence) -> int:
        """KV cells the sequence may fill, reserved when it is admitted."""
        ...

    def reuse_limit(self, sequence: Sequence) -> int:
        """Prompt tokens that may come from the cache (the rest is decoded for its logits)."""
        ...

    def logits_range(self, sequence: Sequence) -> tuple[int, int]:
        """The prompt positions [from, to) whose logits the sequence reads."""
        ...

    def limit_rows(self, sequence: Sequence, start: int, end: int, rows: int) -> tuple[int, int]:
        """The end of this step's prompt chunk from `start`, and the rows with logits left
        for the step's other scored texts out of `rows`."""
        ...

    def prepare(
        self, sequence: Sequence, make_sampler: Callable[[SamplingParams], Sampler]
    ) -> None:
        """Ready an admitted sequence; a `ValueError` refuses it."""
        ...

    def read(
        self, outputs: TokenOutputs, sequence: Sequence, row: int, drafts: Drafts | None
    ) -> None:
        """Use the logits of batch row `row` (and of the guesses decoded after it)."""
        ...

    def ends_with_prompt(self, sequence: Sequence) -> bool:
        """Whether the sequence is done once its prompt is read."""
        ...

    def last_event(
        self, sequence: Sequence, reason: FinishReason, error: str | None
    ) -> Finished | list[ScoredToken]:
        """What the sequence's listener gets when it ends."""
        ...


class Generate:
    """Draws tokens after the prompt until a stop, the length or the end of generation."""

    drafts = True

    def reservation(self, sequence: Sequence) -> int:
        assert sequence.params is not None
        return len(sequence.prompt) + sequence.params.max_tokens

    def reuse_limit(self, sequence: Sequence) -> int:
        # One prompt token must be decoded for the first token's logits.
        return len(sequence.prompt) - 1

    def logits_range(self, sequence: Sequence) -> tuple[int, int]:
        return len(sequence.prompt) - 1, len(sequence.prompt)

    def limit_rows(self, sequence: Sequence, start: int, end: int, rows: int) -> tuple[int, int]:
        return end, rows

    def prepare(
        self, sequence: Sequence, make_sampler: Callable[[SamplingParams], Sampler]
    ) -> None:
        assert sequence.params is not None
        sequence.sampler = make_sampler(sequence.params)
        sequence.stop = StopMatcher(sequence.params.stop)

    def read(
        self, outputs: TokenOutputs, sequence: Sequence, row: int, drafts: Drafts | None
    ) -> None:
        if drafts is None:
            outputs.sample(sequence, row)
        else:
            outputs.verify(sequence, row, drafts)

    def ends_with_prompt(self, sequence: Sequence) -> bool:
        return False

    def last_event(
        self, sequence: Sequence, reason: FinishReason, error: str | None
    ) -> Finished | list[ScoredToken]:
        return finished(sequence, reason, error)


class Score:
    """Reads the log-probability of each token of its text from `score_from` on."""

    drafts = False

    def reservation(self, sequence: Sequence) -> int:
        return len(sequence.prompt)

    def reuse_limit(self, sequence: Sequence) -> int:
        # The logits of every scored position are needed, the one before the first too.
        return sequence.score_from - 1

    def logits_range(self, sequence: Sequence) -> tuple[int, int]:
        return sequence.score_from - 1, len(sequence.prompt) - 1

    def limit_rows(self, sequence: Sequence, start: int, end: int, rows: int) -> tuple[int, int]:
        # Each row of logits is a vocabulary's worth of floats: a step reads a bounded number.
        first = max(start, sequence.score_from - 1)
        end = min(end, first + rows)
        return end, rows - max(0, min(end, len(sequence.prompt) - 1) - first)

    def prepare(
        self, sequence: Sequence, make_sampler: Callable[[SamplingParams], Sampler]
    ) -> None:
        return None

    def read(
        self, outputs: TokenOutputs, sequence: Sequence, row: int, drafts: Drafts | None
    ) -> None:
        outputs.score(sequence, row)

    def ends_with_prompt(self, sequence: Sequence) -> bool:
        return True

    def last_event(
        self, sequence: Sequence, reason: FinishReason, error: str | None
    ) -> Finished | list[ScoredToken]:
        # Its scores so far unless a failed step put them in doubt.
        return finished(sequence, reason, error) if reason == "error" else sequence.scored


def finished(sequence: Sequence, reason: FinishReason, error: str | None) -> Finished:
    """The `Finished` event of a sequence that ends for `reason`."""
    return Finished(
        reason,
        len(sequence.prompt),
        sequence.generated,
        sequence.reused,
        error=error,
        queued_s=sequence.queued_s,
    )


GENERATE = Generate()
SCORE = Score()

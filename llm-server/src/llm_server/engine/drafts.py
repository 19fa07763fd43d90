"""Draft tokens for speculative decoding, proposed by prompt lookup and placed where they are free.

A step's rows that need logits (each sampling sequence's last row) go through the output layer,
which for Gemma 3 holds most of the model's weights (a 262,144-token vocabulary). llama.cpp's
CPU kernels multiply it by tiles of four rows; rows left over take a one-row path that reads
the whole matrix again, so a ragged step costs about as much as the next whole one
(`python -m bench.batch_shape` prints the step costs of a machine and GGUF; bench/README.md).
So when a step's rows with logits are not a multiple of the tile height, it is padded with
guesses of the next tokens of sequences that sample this step: the padded step costs no more
than the ragged one, and every guess the model confirms is a token gained.

The guesses come from the sequence's own text (prompt lookup): where the last few tokens
appeared before, what followed them then. Small models repeat themselves, and answers copy
their prompts; a wrong guess costs nothing but its cell, which is dropped.

Guesses are only verified, never trusted: the sampler draws the token at each position from
the model's distribution as usual (one draw per token, as without guesses), and a guess is kept
only if the draw equals it. The answer is the one the model gives without guesses; only
llama.cpp's batch-shape numeric drift, the same as for any batching, can tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Longest n-gram looked up: longer matches predict better, but four tokens already pin most
# repetitions down and each length costs a dictionary entry per token.
MAX_NGRAM = 4
# A long prompt is indexed from its end only: that is where an answer's text usually comes
# from, and indexing costs the decode thread time per token and n-gram length.
PROMPT_WINDOW = 1024


class NgramIndex:
    """A sequence's tokens, and for each recent n-gram (n <= MAX_NGRAM) where it was last
    followed by another token."""

    def __init__(self, tokens: Iterable[int] = ()) -> None:
        self._tokens: list[int] = []
        self._next: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        tokens = self._tokens
        end = len(tokens)
        # Every n-gram ending just before the new token is now known to be followed by it.
        for n in range(1, min(MAX_NGRAM, end) + 1):
            self._next[tuple(tokens[end - n : end])] = end
        tokens.append(token)

    def propose(self, limit: int) -> tuple[list[int], int]:
        """Up to `limit` tokens that followed the longest earlier occurrence of the current
        suffix, and that suffix's length (0 when nothing matches: no proposal)."""
        tokens = self._tokens
        for n in range(min(MAX_NGRAM, len(tokens)), 0, -1):
            follower = self._next.get(tuple(tokens[-n:]))
            if follower is not None:
                return tokens[follower : follower + limit], n
        return [], 0


def index_for(prompt: Sequence[int]) -> NgramIndex:
    return NgramIndex(prompt[-PROMPT_WINDOW:])


def padding(output_rows: int, multiple: int, room: int) -> int:
    """Guesses that bring a step's `output_rows` (rows with logits) to a multiple of
    `multiple`, within `room` more tokens.

    Below `multiple - 1` rows none: there every row takes the one-row path anyway, so a guess
    costs a whole row; from `multiple - 1` on, rounding up is free or cheaper than the ragged
    step."""
    if multiple <= 1 or output_rows < multiple - 1:
        return 0
    return min(-output_rows % multiple, room)


@dataclass
class Candidate:
    """A sequence that samples this step, with its guesses and how far it may go."""

    key: int
    guesses: list[int]
    strength: int  # length of the n-gram that matched: longer matches are confirmed more often


def assign(candidates: list[Candidate], count: int) -> dict[int, list[int]]:
    """Spread `count` draft positions over the candidates, strongest match first, one guess
    per candidate per round (a sequence's second guess only pays if its first does)."""
    ranked = sorted((c for c in candidates if c.guesses), key=lambda c: c.strength, reverse=True)
    drafts: dict[int, list[int]] = {}
    depth = 0
    while count > 0:
        placed = False
        for candidate in ranked:
            if count == 0:
                break
            if depth < len(candidate.guesses):
                drafts.setdefault(candidate.key, []).append(candidate.guesses[depth])
                count -= 1
                placed = True
        if not placed:
            break
        depth += 1
    return drafts

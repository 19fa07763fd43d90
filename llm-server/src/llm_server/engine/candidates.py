"""The candidate tokens a llama.cpp sampler chain draws from, built from a row of logits.

llama.cpp's `llama_sampler_sample` copies the whole vocabulary (262,144 entries for Gemma 3)
into a candidate array for every token, and its penalty sampler then looks up every candidate
in a hash map. Here the penalties change only the logits of the tokens they count, and a chain
that starts with `top_k` gets only the tokens that can be in its top k: the same draw for a
fraction of the work (see `top`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data
Logits = npt.NDArray[np.float32]
TokenData = npt.NDArray[np.void]

# The estimate of the top-m threshold reads every STRIDE-th logit.
STRIDE = 16


class Penalties:
    """llama.cpp's penalties sampler (repetition, frequency, presence) over every token
    accepted so far, with its arithmetic, in time that grows with the tokens it counts."""

    def __init__(self, repeat: float, frequency: float, presence: float) -> None:
        self._repeat = np.float32(repeat)
        self._frequency = np.float32(frequency)
        self._presence = np.float32(presence)
        self._counts: dict[int, int] = {}
        self._tokens = np.empty(0, dtype=np.int32)
        self._times = np.empty(0, dtype=np.float32)
        self._stale = False

    def accept(self, token: int) -> None:
        self._counts[token] = self._counts.get(token, 0) + 1
        self._stale = True

    def tokens(self) -> npt.NDArray[np.int32]:
        """The distinct tokens counted so far, in ascending order."""
        if self._stale:
            self._tokens = np.fromiter(sorted(self._counts), dtype=np.int32)
            self._times = np.array([self._counts[int(t)] for t in self._tokens], dtype=np.float32)
            self._stale = False
        return self._tokens

    def apply(self, logits: Logits) -> Logits:
        """The penalised logits of `tokens()`, given their raw `logits` (in that order)."""
        self.tokens()
        scaled = np.where(logits <= 0, logits * self._repeat, logits / self._repeat)
        # Every counted token has a count > 0: llama.cpp's `float(count > 0) * present` is
        # `present` exactly.
        penalised: Logits = scaled - (self._times * self._frequency + self._presence)
        return penalised


class Candidates:
    """Fills llama_token_data arrays from logits; one per scheduler thread (reused buffers)."""

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._full = np.zeros(n_vocab, dtype=TOKEN_DATA)

    def full(self, logits: Logits, penalties: Penalties | None) -> TokenData:
        """Every token, in id order, as `llama_sampler_sample` builds them."""
        data = self._full
        data["id"] = self._ids
        data["logit"] = logits
        data["p"] = 0.0
        if penalties is not None:
            tokens = penalties.tokens()
            data["logit"][tokens] = penalties.apply(logits[tokens])
        return data

    def top(self, logits: Logits, m: int, penalties: Penalties | None) -> TokenData:
        """The tokens with the `m` highest raw logits (and any tied with the m-th) plus every
        penalised token, in id order. With w penalised tokens and m = k + w this holds every
        token of the penalised top k: a token not penalised keeps its logit, and at most w of
        the m can be penalised ones. Ties are kept whole, so `greedy` (m = 1 + w) picks the
        same token as over the whole vocabulary."""
        chosen = self._above(logits, m)
        if penalties is not None:
            chosen = np.union1d(chosen, penalties.tokens())
        data = np.empty(len(chosen), dtype=TOKEN_DATA)
        data["id"] = chosen
        data["logit"] = logits[chosen]
        data["p"] = 0.0
        if penalties is not None:
            tokens = penalties.tokens()
            at = np.searchsorted(chosen, tokens)
            data["logit"][at] = penalties.apply(logits[tokens])
        return data

    def _above(self, logits: Logits, m: int) -> npt.NDArray[np.int32]:
        """Every token whose logit is at or above a threshold that at least `m` tokens reach
        (so the threshold is at most the m-th highest logit), close to it: the threshold is
        estimated from every STRIDE-th logit and lowered until it holds."""
        sample = logits[::STRIDE]
        j = 2 * m // STRIDE + 2
        while j < len(sample):
            threshold = np.partition(sample, -j)[-j]
            chosen = np.flatnonzero(logits >= threshold)
            if len(chosen) >= m:
                return chosen.astype(np.int32)
            j *= 4
        return self._ids

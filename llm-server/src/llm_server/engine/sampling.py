"""Per-sequence samplers (llama.cpp sampler chains) and log-probabilities from raw logits."""

from __future__ import annotations

import ctypes
import math
import random
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from llm_server.engine.candidates import Candidates, Penalties
from llm_server.engine.errors import GrammarError
from llm_server.engine.types import SamplingParams


class Sampler:
    """A sequence's sampler: a llama.cpp chain (grammar, `top_k`, `top_p`, `min_p`,
    temperature, draw, in llama.cpp's usual order) and the penalties, which are applied to the
    candidates before the chain sees them (as llama.cpp's penalty sampler, first in its chain,
    would: same arithmetic, same result) in time that grows with the tokens they count."""

    def __init__(self, chain: Any, params: SamplingParams, penalties: Penalties | None) -> None:
        self.chain = chain  # an opaque `llama_sampler *`
        self.penalties = penalties
        self.greedy = params.temperature <= 0
        self.top_k = params.top_k
        self.grammar = params.grammar is not None

    def accept(self, token: int) -> None:
        """The drawn token goes on the sequence (the grammar and the penalties count it)."""
        llama_cpp.llama_sampler_accept(self.chain, token)
        if self.penalties is not None:
            self.penalties.accept(token)

    def free(self) -> None:
        llama_cpp.llama_sampler_free(self.chain)


def build_sampler(params: SamplingParams, vocab: llama_cpp.llama_vocab_p) -> Sampler:
    """The sampler of a request's params; the caller frees it with `free_sampler`."""
    chain_params = llama_cpp.llama_sampler_chain_default_params()
    chain_params.no_perf = True
    chain = llama_cpp.llama_sampler_chain_init(chain_params)
    add = llama_cpp.llama_sampler_chain_add
    if params.grammar is not None:
        try:
            grammar = compile_grammar(vocab, params.grammar)
        except GrammarError:
            llama_cpp.llama_sampler_free(chain)
            raise
        add(chain, grammar)
    penalties = None
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
        # Every token generated so far is penalised, as OpenAI's penalties are.
        penalties = Penalties(
            params.repeat_penalty, params.frequency_penalty, params.presence_penalty
        )
    if params.temperature <= 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return Sampler(chain, params, penalties)
    if params.top_k > 0:
        add(chain, llama_cpp.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    if params.min_p > 0.0:
        add(chain, llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else random.getrandbits(32)
    add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return Sampler(chain, params, penalties)


def free_sampler(sampler: Sampler) -> None:
    sampler.free()


def compile_grammar(vocab: llama_cpp.llama_vocab_p, grammar: str) -> Any:
    """llama.cpp's grammar sampler for a GBNF text; `GrammarError` if llama.cpp refuses it.
    The caller frees it with `llama_sampler_free` (or a chain that holds it does)."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar")
    return sampler


class Drawing:
    """Draws each sequence's next token from a row of logits, on the scheduler's thread.

    It builds the candidates itself (as `llama_sampler_sample` does) so that: a chain that
    starts with `top_k` (or greedy) gets only the tokens that can survive it (see
    `Candidates.top`); the penalties change only the logits of the tokens they count; and a
    grammar that reaches a state no token satisfies (an empty character class, a NUL byte:
    every logit -inf, where llama.cpp would accept whatever it drew and throw from C++, which
    aborts the process) is reported as `None` instead."""

    def __init__(self, n_vocab: int) -> None:
        self._n_vocab = n_vocab
        self._candidates = Candidates(n_vocab)

    def sample(self, sampler: Sampler, ctx: llama_cpp.llama_context_p, index: int) -> int | None:
        """The drawn token, accepted by the sampler; `None` if the grammar allows no token."""
        logits = logits_row(ctx, index, self._n_vocab)
        if sampler.grammar:
            data = self._candidates.full(logits, sampler.penalties)
        elif sampler.greedy and sampler.penalties is None:
            # llama.cpp's greedy sampler: the first highest logit, as argmax.
            token = int(np.argmax(logits))
            sampler.accept(token)
            return token
        elif sampler.greedy or sampler.top_k > 0:
            counted = 0 if sampler.penalties is None else len(sampler.penalties.tokens())
            keep = 1 if sampler.greedy else sampler.top_k
            data = self._candidates.top(logits, keep + counted, sampler.penalties)
        else:
            data = self._candidates.full(logits, sampler.penalties)
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=len(data),
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(sampler.chain, ctypes.byref(candidates))
        selected = int(candidates.selected)
        if not 0 <= selected < int(candidates.size):
            return None
        chosen = candidates.data[selected]  # samplers may point `data` elsewhere
        if not math.isfinite(chosen.logit):
            return None
        token = int(chosen.id)
        sampler.accept(token)
        return token


def logits_row(ctx: llama_cpp.llama_context_p, index: int, n_vocab: int) -> npt.NDArray[np.float32]:
    """The logits of batch output `index`, as a view on llama.cpp's buffer (valid until the
    next decode)."""
    pointer = llama_cpp.llama_get_logits_ith(ctx, index)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (n_vocab,))


def log_softmax_row(
    ctx: llama_cpp.llama_context_p, index: int, n_vocab: int
) -> npt.NDArray[np.float32]:
    """Log-probabilities over the vocabulary from the logits of batch output `index`."""
    logits = logits_row(ctx, index, n_vocab)
    shifted = logits - logits.max()
    result: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum())
    return result


def top_indices(logprobs: npt.NDArray[np.float32], k: int) -> list[int]:
    """The `k` most likely token ids, most likely first."""
    if k <= 0:
        return []
    candidates = np.argpartition(logprobs, -k)[-k:]
    return [int(i) for i in candidates[np.argsort(logprobs[candidates])[::-1]]]

"""Per-sequence samplers (llama.cpp sampler chains) and log-probabilities from raw logits."""

from __future__ import annotations

import ctypes
import math
import random
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from llm_server.engine.errors import GrammarError
from llm_server.engine.types import SamplingParams

# An opaque `llama_sampler *`; llama-cpp-python declares its type only for checkers.
Sampler = Any


def build_sampler(params: SamplingParams, vocab: llama_cpp.llama_vocab_p, n_vocab: int) -> Sampler:
    """A sampler chain in llama.cpp's usual order; the caller frees it with `free_sampler`."""
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
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
        # Penalise every token generated so far, as OpenAI's penalties do.
        add(
            chain,
            llama_cpp.llama_sampler_init_penalties(
                n_vocab,
                params.max_tokens,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            ),
        )
    if params.temperature <= 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    if params.top_k > 0:
        add(chain, llama_cpp.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else random.getrandbits(32)
    add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def compile_grammar(vocab: llama_cpp.llama_vocab_p, grammar: str) -> Sampler:
    """llama.cpp's grammar sampler for a GBNF text; `GrammarError` if llama.cpp refuses it."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar")
    return sampler


_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data


class CheckedSampling:
    """Draws from a grammar-constrained chain without letting llama.cpp accept a token the
    grammar refused. A grammar can reach a state no token satisfies (an empty character
    class, a NUL byte): every logit is then -inf, llama.cpp would accept whatever it drew and
    throw from C++, which aborts the process. Here the draw is checked first and a dead end
    is reported as `None`. It builds the candidates itself (as `llama_sampler_sample` does),
    so it is used only for sequences with a grammar."""

    def __init__(self, n_vocab: int) -> None:
        self._n_vocab = n_vocab
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._data = np.zeros(n_vocab, dtype=_TOKEN_DATA)

    def sample(self, sampler: Sampler, ctx: llama_cpp.llama_context_p, index: int) -> int | None:
        """The drawn token, accepted by the chain; `None` if the grammar allows no token."""
        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        logits = np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (self._n_vocab,)
        )
        data = self._data
        data["id"] = self._ids
        data["logit"] = logits
        data["p"] = 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=self._n_vocab,
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        selected = int(candidates.selected)
        if not 0 <= selected < int(candidates.size):
            return None
        chosen = candidates.data[selected]  # samplers may point `data` elsewhere
        if not math.isfinite(chosen.logit):
            return None
        token = int(chosen.id)
        llama_cpp.llama_sampler_accept(sampler, token)
        return token


def free_sampler(sampler: Sampler) -> None:
    llama_cpp.llama_sampler_free(sampler)


def log_softmax_row(
    ctx: llama_cpp.llama_context_p, index: int, n_vocab: int
) -> npt.NDArray[np.float32]:
    """Log-probabilities over the vocabulary from the logits of batch output `index`."""
    pointer = llama_cpp.llama_get_logits_ith(ctx, index)
    logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (n_vocab,))
    shifted = logits - logits.max()
    result: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum())
    return result


def top_indices(logprobs: npt.NDArray[np.float32], k: int) -> list[int]:
    """The `k` most likely token ids, most likely first."""
    if k <= 0:
        return []
    candidates = np.argpartition(logprobs, -k)[-k:]
    return [int(i) for i in candidates[np.argsort(logprobs[candidates])[::-1]]]

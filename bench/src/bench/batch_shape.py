"""What one `llama_decode` step costs by its number of tokens, on this machine.

llama.cpp's CPU matrix kernels work on tiles of batch rows; rows left over take a one-row path
that reads every weight again, so a ragged step can cost more than a larger whole one. This
prints the table behind llm-server's `LLM_BATCH_MULTIPLE` (run it on a quiet machine):

    python -m bench.batch_shape [--model X.gguf] [--threads 2] [--max-tokens 36]

Each step decodes one new token for each of up to `--sequences` sequences (then a second one
per sequence, and so on), every row with logits — the shape of decode steps with guesses.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import llama_cpp

from bench.targets import embedded_model

CONTEXT_TOKENS = 40  # each sequence's prompt before the timed steps


def step_costs(
    model_path: Path, threads: int, sequences: int, max_tokens: int, repeats: int
) -> dict[int, float]:
    """Median milliseconds of a step of n tokens, for n = 1..max_tokens."""
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(
        str(model_path).encode(), llama_cpp.llama_model_default_params()
    )
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = sequences * (CONTEXT_TOKENS + max_tokens) + 256
    params.n_batch = params.n_ubatch = 512
    params.n_seq_max = sequences
    params.n_threads = params.n_threads_batch = threads
    params.kv_unified = True
    params.flash_attn_type = 1
    ctx = llama_cpp.llama_init_from_model(model, params)
    memory = llama_cpp.llama_get_memory(ctx)
    batch = llama_cpp.llama_batch_init(512, 0, 1)

    def decode(rows: list[tuple[int, int, int, bool]]) -> float:
        for i, (token, position, sequence, logits) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.logits[i] = token, position, logits
            batch.n_seq_id[i], batch.seq_id[i][0] = 1, sequence
        batch.n_tokens = len(rows)
        started = time.perf_counter()
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        return time.perf_counter() - started

    try:
        for s in range(sequences):
            decode([(100 + s + j, j, s, j == CONTEXT_TOKENS - 1) for j in range(CONTEXT_TOKENS)])
        costs: dict[int, float] = {}
        for n in range(1, max_tokens + 1):
            times = []
            for _ in range(repeats):
                rows = [
                    (300 + i % 7, CONTEXT_TOKENS + i // sequences, i % sequences, True)
                    for i in range(n)
                ]
                times.append(decode(rows))
                for s in range(sequences):
                    llama_cpp.llama_memory_seq_rm(memory, s, CONTEXT_TOKENS, -1)
            costs[n] = statistics.median(times) * 1000
        return costs
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="GGUF (default: the embedded Gemma 3 270M)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    costs = step_costs(
        args.model or embedded_model(), args.threads, args.sequences, args.max_tokens, args.repeats
    )
    print("| tokens in the step | ms (median) | ms per token |")
    print("|---|---|---|")
    for n, ms in costs.items():
        print(f"| {n} | {ms:.1f} | {ms / n:.2f} |")


if __name__ == "__main__":
    main()

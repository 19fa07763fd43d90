"""`make bench`: llm-server against llama.cpp's `llama-server`, side by side on this machine.

Both serve the same GGUF with the same thread count and parallel slots. Only one server runs
at a time (an idle server's spinning threads would slow the other), and rounds alternate
between them so that background noise falls on both; each figure is the median of the
rounds. Results are printed as a table and written to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from bench.load import LoadResult, run_load
from bench.servers import ROOT, RunningServer, embedded_model, start_llama_server, start_llm_server


def measure(
    server: RunningServer, concurrency: int, per_client: int, max_tokens: int
) -> LoadResult:
    return asyncio.run(run_load(server.url, server.token, concurrency, per_client, max_tokens))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--per-client", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    model = embedded_model()
    starters: dict[str, Callable[[], RunningServer]] = {
        "llm-server": lambda: start_llm_server(model, args.threads, args.parallel),
        "llama-server": lambda: start_llama_server(model, args.threads, args.parallel, 16384),
    }
    results: dict[str, dict[int, list[LoadResult]]] = {name: {} for name in starters}
    for _ in range(args.rounds):
        for name, start in starters.items():
            server = start()
            try:
                for concurrency in args.concurrency:
                    result = measure(server, concurrency, args.per_client, args.max_tokens)
                    results[name].setdefault(concurrency, []).append(result)
            finally:
                server.stop()

    print(
        f"\nGemma 3 270M Q4_K_M, {args.threads} threads, {args.parallel} slots, streamed "
        f"/v1/completions, {args.max_tokens} tokens, {args.per_client} requests per client, "
        f"median of {args.rounds} alternating rounds\n"
    )
    print(
        "| concurrency | llm-server tok/s | llama-server tok/s | ratio | "
        "TTFT p50 ours (ms) | TTFT p50 llama-server (ms) |"
    )
    print("|---|---|---|---|---|---|")
    report = []
    for concurrency in args.concurrency:
        mine = results["llm-server"][concurrency]
        ref = results["llama-server"][concurrency]
        ours_tps = statistics.median(r.tokens_per_second for r in mine)
        ref_tps = statistics.median(r.tokens_per_second for r in ref)
        ours_ttft = statistics.median(r.ttft_p50 for r in mine)
        ref_ttft = statistics.median(r.ttft_p50 for r in ref)
        print(
            f"| {concurrency} | {ours_tps:.1f} | {ref_tps:.1f} | {ours_tps / ref_tps:.2f} | "
            f"{ours_ttft:.0f} | {ref_ttft:.0f} |"
        )
        report.append(
            {
                "concurrency": concurrency,
                "llm_server_tps": ours_tps,
                "llama_server_tps": ref_tps,
                "llm_server_ttft_p50_ms": ours_ttft,
                "llama_server_ttft_p50_ms": ref_ttft,
                "rounds": {
                    name: [r.tokens_per_second for r in results[name][concurrency]]
                    for name in results
                },
            }
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    Path(out / "latest.json").write_text(
        json.dumps({"args": vars(args), "results": report}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

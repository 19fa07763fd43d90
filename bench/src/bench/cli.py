"""The command line: flags, then the run, then JSON, markdown and PNG under bench/results/."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench.chart import chart
from bench.metrics import clean_json
from bench.plan import Workload, build_plan
from bench.prompts import PromptPool, Tokenizer
from bench.report import markdown
from bench.runner import RunSettings, log, run_sync, token_failures
from bench.shapes import SHAPES
from bench.targets import ROOT, STARTERS, embedded_model

QUICK = {
    "levels": [1, 8],
    "prompt_lengths": [32],
    "rates": [],
    "interference": 0,
    "rounds": 1,
    "duration": 5.0,
}
# The default request against llama-server's default, and the tuned one beside it: the
# issue's 1/16/32-stream targets, nothing else.
DEFAULT_REQUEST = {
    "levels": [1, 16, 32],
    "shape_levels": [1, 16, 32],
    "shapes": ["sdk", "tuned"],
    "prompt_lengths": [32],
    "rates": [],
    "interference": 0,
}
PRESETS = {"--quick": QUICK, "--default-request": DEFAULT_REQUEST}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Streamed /v1/completions load against llm-server, llama-server and "
        "llama-cpp-python's server, each started here on the same GGUF and threads.",
    )
    p.add_argument("--quick", action="store_true", help=f"a short run: {QUICK} (flags win)")
    p.add_argument(
        "--default-request",
        action="store_true",
        help=f"just the default request vs the tuned one: {DEFAULT_REQUEST} (flags win)",
    )
    p.add_argument(
        "--shapes",
        nargs="+",
        choices=list(SHAPES),
        default=["sdk", "tuned"],
        help="request bodies (bench.shapes): the first at every level and for the other "
        "workloads, the others beside it at --shape-levels",
    )
    p.add_argument("--shape-levels", nargs="*", type=int, default=[1, 16, 32])
    p.add_argument(
        "--natural-eos",
        action="store_true",
        help="send no ignore_eos / EOS logit bias: answers end where each server ends them "
        "(as an SDK client's do), so targets may draw different numbers of tokens",
    )
    p.add_argument(
        "--flash-attn",
        choices=["on", "off"],
        default="on",
        help="for every target alike (llm-server's default is on)",
    )
    p.add_argument("--targets", nargs="+", choices=list(STARTERS), default=list(STARTERS))
    p.add_argument(
        "--levels",
        nargs="+",
        type=int,
        default=[1, 2, 4, 6, 8, 14, 16, 32],
        help="closed-loop concurrencies (the first prompt length)",
    )
    p.add_argument(
        "--prompt-lengths",
        nargs="+",
        type=int,
        default=[32, 512, 1500],
        help="prompt tokens (about); the first at every level, the rest at --long-levels",
    )
    p.add_argument("--long-levels", nargs="+", type=int, default=[1, 8])
    p.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request")
    p.add_argument(
        "--rates",
        nargs="*",
        type=float,
        default=[1.5],
        help="Poisson arrival rates (requests/s); none to skip",
    )
    p.add_argument(
        "--interference",
        type=int,
        default=8,
        metavar="STREAMS",
        help="streams decoding when a long prompt arrives; 0 to skip",
    )
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    p.add_argument(
        "--duration",
        type=float,
        default=6.0,
        help="seconds each closed-loop client keeps sending (and of Poisson arrivals)",
    )
    p.add_argument("--min-requests", type=int, default=1, help="per closed-loop client")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-batched-bench", action="store_true")
    p.add_argument("--model", type=Path, help="GGUF (default: the embedded Gemma 3 270M)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def run_settings(
    args: argparse.Namespace,
    model: Path,
    tokenizer: Tokenizer,
    plan: list[Workload],
    logs: Path,
    batched_levels: list[int],
    **overrides: Any,
) -> RunSettings:
    """The runner's settings from the flags `python -m bench` and `python -m bench.stack`
    share (threads, targets, rounds, duration, min requests, flash attention)."""
    return RunSettings(
        model=model,
        threads=args.threads,
        targets=args.targets,
        plan=plan,
        rounds=args.rounds,
        duration=args.duration,
        min_requests=args.min_requests,
        batched_levels=batched_levels,
        logs=logs,
        eog_tokens=tuple(tokenizer.end_of_generation_tokens()),
        count_tokens=lambda text: len(tokenizer.tokenize(text)),
        flash_attn=args.flash_attn == "on",
        **overrides,
    )


def parse(argv: list[str]) -> argparse.Namespace:
    return parse_presets(parser(), argv, PRESETS)


def parse_presets(
    p: argparse.ArgumentParser, argv: list[str], presets: dict[str, dict[str, Any]]
) -> argparse.Namespace:
    """`argv` parsed with each preset flag given (e.g. `--quick`) setting its defaults first,
    so that flags given explicitly win."""
    for flag, preset in presets.items():
        if flag in argv:
            p.set_defaults(**preset)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    model = args.model or embedded_model()
    tokenizer = Tokenizer(model)
    pool = PromptPool(tokenizer, args.prompt_lengths + [1500] * bool(args.interference))
    plan = build_plan(
        args.levels,
        args.prompt_lengths,
        args.long_levels,
        args.max_tokens,
        args.rates,
        args.interference,
        tuple(args.shapes),
        tuple(args.shape_levels),
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    settings = run_settings(
        args,
        model,
        tokenizer,
        plan,
        args.out / "logs" / stamp,
        [] if args.no_batched_bench else args.levels,
        natural_eos=args.natural_eos,
    )
    log(f"{len(plan)} workloads × {len(args.targets)} targets × {args.rounds} rounds")
    started = time.monotonic()
    result: dict[str, Any] = run_sync(settings, pool)
    command = "python -m bench " + shlex.join(argv)
    result["config"] = {
        "command": command.strip(),
        "model": str(model),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "minutes": (time.monotonic() - started) / 60,
        "date": stamp,
    }
    result["prompt_tokens_measured"] = {str(k): v for k, v in pool.measured.items()}
    header = (
        f"Model `{model.name}`, {args.threads} threads, flash attention {args.flash_attn}, "
        f"requests {', '.join(args.shapes)} (bench/src/bench/shapes.py), {args.max_tokens} "
        f"output tokens per request at most "
        f"({'answers end by themselves' if args.natural_eos else 'end-of-sequence ignored'}), "
        f"temperature 0.8; "
        f"median of {args.rounds} round(s), target order reversed every other round, "
        f"{args.duration:g} s per measurement. Made by `{command.strip()}` on {stamp} "
        f"({result['config']['minutes']:.1f} min)."
    )
    write(args.out, stamp, result, markdown(result, args.targets, header), args.targets)
    if failures := token_failures(result["measurements"]):
        log("FAILED: token counts do not match the text or usage:\n  " + "\n  ".join(failures))
        return 1
    return 0


def write(out: Path, stamp: str, result: dict[str, Any], table: str, targets: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(clean_json(result), indent=2)
    for name in (stamp, "latest"):
        (out / f"{name}.json").write_text(text)
        (out / f"{name}.md").write_text(table)
        chart(result, targets, out / f"{name}.png", f"streamed requests, {stamp}")
    print("\n" + table)
    log(f"wrote {out}/{stamp}.{{json,md,png}} and latest.*")

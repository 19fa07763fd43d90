"""`python -m bench.stack`: the whole stack against the stack a user would otherwise assemble
(bench/README.md, "The whole stack against LiteLLM + llama-server"): our gateway + llm-server
against LiteLLM's proxy + llama-server, both with authentication on, one at a time, on the
same GGUF and threads. The closed loop (bench.runner) and the conversation workload
(bench.conversation) run unchanged, sent to each proxy's URL with its key."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import conversation
from bench.cli import parse_presets, run_settings
from bench.conv_chart import stack_chart
from bench.plan import build_plan
from bench.prompts import PromptPool, Tokenizer
from bench.runner import RunSettings, log, run, token_failures
from bench.shapes import SHAPES
from bench.stack_report import stack_markdown, verdicts
from bench.stack_targets import STACK_STARTERS
from bench.targets import ROOT, embedded_model

PARTS = ("closed", "conversation")
# A smoke run: one level of 2 streams, 1 round, and a conversation of 4 users × 3 turns.
QUICK: dict[str, Any] = {
    "levels": [2],
    "rounds": 1,
    "duration": 5.0,
    "users": 4,
    "turns": 3,
    "slots": 2,
    "system_tokens": 64,
    "user_tokens": 32,
    "answer_tokens": 16,
    "think": 0.5,
    "arrival_spread": 2.0,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.stack", description=__doc__)
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK} (flags win)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument(
        "--targets", nargs="+", choices=list(STACK_STARTERS), default=list(STACK_STARTERS)
    )
    p.add_argument("--levels", nargs="+", type=int, default=[16, 32], help="closed-loop streams")
    p.add_argument(
        "--shapes",
        nargs="+",
        choices=list(SHAPES),
        default=["sdk"],
        help="closed-loop request bodies (bench.shapes), each at every level",
    )
    p.add_argument("--prompt", type=int, default=32, help="closed-loop prompt tokens (about)")
    p.add_argument("--max-tokens", type=int, default=64, help="closed loop: tokens per answer")
    p.add_argument("--rounds", type=int, default=3, help="closed-loop rounds (order alternates)")
    p.add_argument("--duration", type=float, default=6.0, help="closed loop: seconds per client")
    p.add_argument("--min-requests", type=int, default=1)
    p.add_argument(
        "--conversation-rounds", type=int, default=1, help="conversation rounds (order alternates)"
    )
    conversation.add_conversation_args(p)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--flash-attn", choices=["on", "off"], default="on")
    p.add_argument("--model", type=Path, help="GGUF (default: the embedded Gemma 3 270M)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def closed_settings(
    args: argparse.Namespace, model: Path, tokenizer: Tokenizer, logs: Path
) -> RunSettings:
    """bench.runner's settings for the closed loop at `--levels`, every shape at every level,
    through the two proxies; no llama-batched-bench (it measures no proxy)."""
    plan = build_plan(
        args.levels, [args.prompt], [], args.max_tokens, [], 0,
        tuple(args.shapes), tuple(args.levels),
    )  # fmt: skip
    return run_settings(args, model, tokenizer, plan, logs, [], starters=STACK_STARTERS)


async def run_parts(
    args: argparse.Namespace, model: Path, tokenizer: Tokenizer, stamp: str, command: str
) -> dict[str, Any]:
    """The closed loop, then the conversation workload (each as asked by `--parts`)."""
    result: dict[str, Any] = {}
    if "closed" in args.parts:
        settings = closed_settings(args, model, tokenizer, args.out / "logs" / stamp)
        result["closed"] = await run(settings, PromptPool(tokenizer, [args.prompt]))
    if "conversation" in args.parts:
        started = time.monotonic()
        conv_args = argparse.Namespace(**{**vars(args), "rounds": args.conversation_rounds})
        measurements = await conversation.run(conv_args, model, tokenizer, stamp, STACK_STARTERS)
        result["conversation"] = conversation.conversation_result(
            command, model, conv_args, measurements, started, stamp
        )
    return result


def all_medians(result: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """workload → target → medians, both parts together."""
    out = dict(result.get("closed", {}).get("medians", {}))
    if "conversation" in result:
        out["conversations"] = result["conversation"]["medians"]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_presets(parser(), argv, {"--quick": QUICK})
    model = args.model or embedded_model()
    tokenizer = Tokenizer(model)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    command = ("python -m bench.stack " + shlex.join(argv)).strip()
    log(f"parts {args.parts}, targets {args.targets}, closed-loop levels {args.levels}")
    started = time.monotonic()
    result = asyncio.run(run_parts(args, model, tokenizer, stamp, command))
    closed_keys = [w["key"] for w in result.get("closed", {}).get("workloads", [])]
    result["verdicts"] = verdicts(all_medians(result), closed_keys)
    minutes = (time.monotonic() - started) / 60
    result["config"] = {
        "command": command,
        "model": str(model),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "minutes": minutes,
        "date": stamp,
    }
    header = (
        f"The whole stack (gateway + llm-server) against LiteLLM + llama-server: model "
        f"`{model.name}`, {args.threads} threads, flash attention {args.flash_attn}, "
        f"authentication on at both proxies. Closed loop: {', '.join(args.shapes)} request, "
        f"{args.max_tokens} tokens, median of {args.rounds} round(s); conversations: "
        f"{args.conversation_rounds} round(s). Made by `{command}` on {stamp} ({minutes:.1f} min)."
    )
    conversation.write(
        args.out,
        stamp,
        result,
        stack_markdown(result, header),
        lambda r, path: stack_chart(r, args.targets, path),
        prefix="stack",
    )
    measurements = [
        *result.get("closed", {}).get("measurements", []),
        *result.get("conversation", {}).get("measurements", []),
    ]
    if failures := token_failures(measurements):
        log("FAILED: token counts do not match the text or usage:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

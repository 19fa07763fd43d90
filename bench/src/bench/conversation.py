"""`python -m bench.conversation`: the conversation workload (bench/README.md) against
llm-server, llama-server and llama-cpp-python's server, one at a time on the same GGUF,
threads, decode slots and host-memory cache budget; per-turn figures to bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.cache_memory import CacheWatcher
from bench.client import RequestRecord, new_http, stream_completion
from bench.conv_chart import conversation_chart
from bench.conv_report import conversation_markdown
from bench.conv_stats import Turn, summarize_conversations
from bench.conv_workload import (
    ConversationSpec,
    Script,
    UserScript,
    build_script,
    chat_messages,
    transcript,
)
from bench.metrics import check_tokens, clean_json
from bench.procstats import ProcSampler
from bench.prompts import Tokenizer, corpus
from bench.runner import log, medians, target_order, token_failures
from bench.shapes import SHAPES, Shape
from bench.targets import (
    ROOT,
    STARTERS,
    RunningTarget,
    ServerConfig,
    Starter,
    embedded_model,
)


async def _user(
    http: Any,
    target: RunningTarget,
    script: Script,
    user: UserScript,
    shape: Shape,
    started: float,
) -> list[Turn]:
    """One user's conversation: arrive, then every turn resend the history plus a new message,
    read the answer, think. A failed turn ends the conversation (there is no answer to keep)."""
    spec = script.spec
    await asyncio.sleep(max(0.0, started + user.arrival - time.perf_counter()))
    answers: list[str] = []
    out = []
    for t, _ in enumerate(user.messages):
        messages = list(user.messages[: t + 1])
        content: str | list[dict[str, str]] = (
            chat_messages(script.system, messages, answers)
            if shape.chat
            else transcript(script.system, messages, answers)
        )
        record = await stream_completion(
            http,
            target,
            content,
            0,
            spec.answer_tokens,
            seed=1000 * user.user + t,
            client_id=f"user-{user.user}",
            record=RequestRecord(0.0, 0, spec.answer_tokens),
            shape=shape,
        )
        out.append(Turn(user.user, t + 1, record))
        if not record.ok:
            break
        answers.append(record.state.text)
        if t < len(user.thinks):
            await asyncio.sleep(user.thinks[t])
    return out


async def converse(target: RunningTarget, script: Script, shape: Shape) -> list[Turn]:
    """Every user of the script against one target; all their turns."""
    async with new_http(script.spec.users) as http:
        started = time.perf_counter()
        per_user = await asyncio.gather(
            *(_user(http, target, script, u, shape, started) for u in script.users)
        )
    return [t for turns in per_user for t in turns]


async def _measure(
    starter: Starter, name: str, config: ServerConfig, script: Script, shape: Shape, count: Any
) -> dict[str, Any]:
    target = starter(config)
    try:
        async with new_http(1) as http:  # one short request, outside the figures
            warm = await stream_completion(http, target, "Hello", 0, 4, 1, shape=shape)
        if warm.error:
            raise RuntimeError(f"{name}: warm-up failed: {warm.error}")
        sampler = ProcSampler(*target.pids)
        cache = CacheWatcher(target.model_server)
        load_before = os.getloadavg()[0]
        sampler.start()
        await cache.start()
        turns = await converse(target, script, shape)
        proc = await sampler.stop()
        cache_figures = await cache.stop()
    finally:
        target.stop()
    check_tokens([t.record for t in turns], count)
    return {
        **summarize_conversations(turns, script.spec.turns),
        **cache_figures,
        "rss_peak_mb": proc.rss_peak_mb,
        "rss_mean_mb": proc.rss_mean_mb,
        "rss_end_mb": proc.rss_end_mb,
        "cpu_percent": proc.cpu_percent,
        "loadavg_1m": [load_before, os.getloadavg()[0]],
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.conversation", description=__doc__)
    p.add_argument("--targets", nargs="+", choices=list(STARTERS), default=list(STARTERS))
    add_conversation_args(p)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--flash-attn", choices=["on", "off"], default="on")
    p.add_argument("--model", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def add_conversation_args(p: argparse.ArgumentParser) -> None:
    """The workload's knobs (also `python -m bench.stack`'s): users, turns, slots, sizes,
    think time, arrivals, cache budget, endpoint, seed."""
    d = ConversationSpec()
    p.add_argument("--users", type=int, default=d.users)
    p.add_argument("--turns", type=int, default=d.turns)
    p.add_argument("--slots", type=int, default=d.slots, help="decode slots (llama-server -np)")
    p.add_argument("--system-tokens", type=int, default=d.system_tokens)
    p.add_argument("--user-tokens", type=int, default=d.user_tokens)
    p.add_argument("--answer-tokens", type=int, default=d.answer_tokens)
    p.add_argument("--think", type=float, default=d.think_mean, help="mean think time, s")
    p.add_argument("--arrival-spread", type=float, default=d.arrival_spread)
    p.add_argument("--cache-mib", type=int, default=1024, help="host-memory cache budget")
    p.add_argument(
        "--endpoint",
        choices=["completions", "chat"],
        default="completions",
        help="completions: the client writes the transcript (same tokens on every target); "
        "chat: messages, each server applies its own template",
    )
    p.add_argument("--seed", type=int, default=0)


def spec_of(args: argparse.Namespace, round_index: int) -> ConversationSpec:
    return ConversationSpec(
        users=args.users,
        turns=args.turns,
        slots=args.slots,
        system_tokens=args.system_tokens,
        user_tokens=args.user_tokens,
        answer_tokens=args.answer_tokens,
        think_mean=args.think,
        arrival_spread=args.arrival_spread,
        seed=args.seed + round_index,
    )


async def run(
    args: argparse.Namespace,
    model: Path,
    tokenizer: Tokenizer,
    stamp: str,
    starters: Mapping[str, Starter] = STARTERS,
) -> list[dict[str, Any]]:
    """Every round's script against every target of `args.targets` (started by `starters`),
    target order reversed every other round; one measurement per round and target."""
    corpus_tokens = tokenizer.tokenize(corpus())
    shape = SHAPES["sdk" if args.endpoint == "chat" else "sdk-completions"]
    eog = tuple(tokenizer.end_of_generation_tokens())
    measurements = []

    def count_tokens(text: str) -> int:
        return len(tokenizer.tokenize(text))

    for round_index in range(args.rounds):
        spec = spec_of(args, round_index)
        script = build_script(spec, corpus_tokens, tokenizer)
        config = ServerConfig(
            model,
            args.threads,
            spec.slots,
            spec.per_sequence(),
            args.out / "logs" / stamp,
            eog,
            flash_attn=args.flash_attn == "on",
            cache_bytes=args.cache_mib * 2**20,
        )
        for name in target_order(args.targets, round_index):
            log(f"round {round_index + 1}/{args.rounds}  conversations  {name}")
            try:
                figures = await _measure(starters[name], name, config, script, shape, count_tokens)
            except Exception as error:  # a target failing must not lose the others
                figures = {"failed": f"{type(error).__name__}: {error}"}
            log(
                f"    answers={figures.get('answers')} errors={figures.get('errors')} "
                f"tok/s={figures.get('output_tokens_per_s', float('nan')):.4g} "
                f"later TTFT p50/p99={figures.get('later_ttft_p50_ms', float('nan')):.0f}/"
                f"{figures.get('later_ttft_p99_ms', float('nan')):.0f} ms "
                f"reused={figures.get('later_reused_fraction', float('nan')):.2f} "
                f"mismatches={figures.get('token_mismatches')} {figures.get('failed', '')}"
            )
            measurements.append(
                {"round": round_index, "workload": "conversations", "target": name, **figures}
            )
    return measurements


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    model = args.model or embedded_model()
    tokenizer = Tokenizer(model)
    spec = spec_of(args, 0)
    if spec.users <= spec.slots:
        log(f"note: {spec.users} users for {spec.slots} slots: no user waits for a slot")
    log(
        f"{spec.users} users × {spec.turns} turns, last prompt ≈ {spec.last_prompt_tokens()} "
        f"tokens, {spec.slots} slots, {args.cache_mib} MiB cache, targets {args.targets}"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    measurements = asyncio.run(run(args, model, tokenizer, stamp))
    command = "python -m bench.conversation " + shlex.join(argv)
    result = conversation_result(command, model, args, measurements, started, stamp)
    table = conversation_markdown(result, args.targets, spec.turns)
    write(args.out, stamp, result, table, lambda r, path: conversation_chart(r, args.targets, path))
    if failures := token_failures(measurements):
        log("FAILED: token counts do not match the text or usage:\n  " + "\n  ".join(failures))
        return 1
    return 0


def conversation_result(
    command: str,
    model: Path,
    args: argparse.Namespace,
    measurements: list[dict[str, Any]],
    started: float,
    stamp: str,
) -> dict[str, Any]:
    """The run's settings, every measurement and the medians over rounds per target."""
    spec = spec_of(args, 0)
    return {
        "config": {
            "command": command.strip(),
            "model": str(model),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "last_prompt_tokens_about": spec.last_prompt_tokens(),
            "per_sequence": spec.per_sequence(),
            "turns": spec.turns,
            "minutes": (time.monotonic() - started) / 60,
            "date": stamp,
        },
        "measurements": measurements,
        "medians": medians(measurements).get("conversations", {}),
    }


def write(
    out: Path,
    stamp: str,
    result: dict[str, Any],
    table: str,
    draw: Callable[[dict[str, Any], Path], None],
    prefix: str = "conversation",
) -> None:
    """`<prefix>-<stamp>.{json,md,png}` and `<prefix>-latest.*` under `out` (the PNGs drawn by
    `draw` once both JSON files are written); the table printed."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(clean_json(result), indent=2)
    names = (f"{prefix}-{stamp}", f"{prefix}-latest")
    for name in names:
        (out / f"{name}.json").write_text(text)
        (out / f"{name}.md").write_text(table)
    for name in names:
        draw(result, out / f"{name}.png")
    print("\n" + table)
    log(f"wrote {out}/{prefix}-{stamp}.{{json,md,png}} and {prefix}-latest.*")


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m adversarial run [--pending] [--only PREFIX ...] [--list]
python -m adversarial soak [--duration S] [--concurrency N]

`run` is `make test-adversarial`: every case of every category against a real stack it starts
itself, then the summary; exit 1 on any failure. `soak` is `make soak`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from adversarial import cases as _cases  # noqa: F401 - registers every case
from adversarial.registry import CASES, PENDING, Context, Tally, run_cases, select, summary
from adversarial.stack import Stack, start_stack

# The shared stack: small max_tokens caps so generated inputs cannot occupy the model for
# minutes (the fuzzers pick any allowed value), fast health checks.
MAIN_LLM_ENV = {"LLM_MAX_TOKENS_LIMIT": "32"}
MAIN_GATEWAY_ENV = {
    "LIMIT_USER_MAX_TOKENS": "8",
    "LIMIT_ADMIN_MAX_TOKENS": "8",
    "LLM_HEALTH_INTERVAL_MS": "1000",
}


def main_stack() -> Stack:
    stack = start_stack(llm_env=MAIN_LLM_ENV, gateway_env=MAIN_GATEWAY_ENV)
    # The operator's first admin, made with bin/admin before anyone signs up.
    stack.account("admin", role="admin", key=False)
    return stack


def run(args: argparse.Namespace) -> int:
    pending = args.pending or os.environ.get("PENDING", "") not in ("", "0")
    if args.list:
        for item in CASES:
            mark = f"  [pending: issue 12 item {PENDING[item.key]}]" if item.key in PENDING else ""
            print(f"{item.key}: {item.expect}{mark}")
        return 0
    chosen, held = select(CASES, pending=pending, only=args.only)
    if not chosen and not held:
        print("no case matches", args.only, file=sys.stderr)
        return 1
    tally = Tally()
    context = Context(tally, main_stack)
    started = time.monotonic()
    try:
        outcomes = run_cases(chosen, held, context, log=lambda s: print(s, flush=True))
    finally:
        context.close()
    text, ok = summary(outcomes, tally)
    print(text)
    print(f"took {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adversarial", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_p = commands.add_parser("run", help="the standing suite (make test-adversarial)")
    run_p.add_argument("--pending", action="store_true", help="run the PENDING cases too")
    run_p.add_argument("--only", nargs="*", help="case keys or prefixes (category/name)")
    run_p.add_argument("--list", action="store_true", help="list the cases and exit")
    soak_p = commands.add_parser("soak", help="long concurrent streaming (make soak)")
    soak_p.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    soak_p.add_argument("--concurrency", type=int, default=200, help="streams (default 200)")
    soak_p.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    from adversarial.soak import soak

    return soak(args.duration, args.concurrency, args.max_tokens)


if __name__ == "__main__":
    sys.exit(main())

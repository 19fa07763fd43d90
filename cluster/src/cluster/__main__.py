"""`python -m cluster [--long]`: build the network and the stack, run every scenario, print the
figures, remove everything (also on failure or Ctrl-C). Exit 0 when every check held; a run
where namespaces cannot be made is skipped loudly (exit 0), or fails under CI=true."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from cluster import scenarios
from cluster.netns import NamespacesUnavailableError, Network
from cluster.scenarios import Report
from cluster.services import MissingError
from cluster.stack import Stack, build, say


def run_all(stack: Stack, report: Report, long: bool) -> None:
    """Every scenario; the long run sends more and repeats the faults."""
    rounds = 2 if long else 1
    streams = 8 if long else 4
    tokens = 160 if long else 48
    background: list[scenarios.BackgroundLoad] = []
    steps: list[tuple[str, Callable[[], None]]] = [
        ("background load", lambda: background.append(scenarios.BackgroundLoad(stack, report, 2))),
        ("cache", lambda: scenarios.cache_shared(stack, report)),
        ("sessions", lambda: scenarios.sessions(stack, report)),
        (
            "limits",
            lambda: scenarios.limits_exact(stack, report, 40 if long else 12, 10 if long else 4),
        ),
        ("background load stopped", lambda: background[0].stop()),
    ]
    for _ in range(rounds):
        steps += [
            ("kill llm-1", lambda: scenarios.kill_llm_server(stack, report, streams, tokens)),
            ("cut llm-2's link", lambda: scenarios.cut_link(stack, report, streams, tokens)),
        ]
    steps += [
        ("restart redis", lambda: scenarios.restart_redis(stack, report)),
        ("restart postgres", lambda: scenarios.restart_postgres(stack, report)),
        ("analytics", lambda: scenarios.analytics(stack, report)),
    ]
    for name, step in steps:
        began = time.monotonic()
        step()
        say(f"{name}: ok ({time.monotonic() - began:.1f} s)")


def skip(reason: str) -> int:
    """Skip loudly; under CI a skip is a failure."""
    print(f"SKIPPING the cluster test: {reason}", file=sys.stderr)
    return 1 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__)
    parser.add_argument("--long", action="store_true", help="more load, every fault twice")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # Both end the run through the cleanup below; SIGINT too when the shell that started the
    # run in the background set it to be ignored.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="cluster-"))
    report = Report()
    started = time.monotonic()
    with Network() as net:
        try:
            stack = build(net, workdir)
            report.time(
                "stack up (7 hosts, models loaded, accounts made)", time.monotonic() - started
            )
            run_all(stack, report, args.long)
        except NamespacesUnavailableError as exc:
            return skip(str(exc))
        except MissingError as exc:
            return skip(str(exc))
        except BaseException:
            traceback.print_exc()
            print(report.render())
            print(f"logs kept in {workdir}", file=sys.stderr)
            return 1
    report.time("whole run", time.monotonic() - started)
    print(report.render())
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

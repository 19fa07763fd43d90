"""The supervisor's restart of a crashed service, with real child processes."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))

import stack  # noqa: E402

# Writes when it started (CLOCK_MONOTONIC is system-wide), then exits with code 3.
CRASHER = (
    "import sys, time\n"
    "with open(sys.argv[1], 'a') as f: f.write(f'{time.monotonic()}\\n')\n"
    "time.sleep(0.1)\n"
    "sys.exit(3)\n"
)
STEADY = "import time\ntime.sleep(120)\n"


def _service(name: str, code: str, *args: str, cwd: Path) -> stack.Service:
    return stack.Service(
        name, [sys.executable, "-c", code, *args], cwd, dict(os.environ), "http://127.0.0.1:9/"
    )


class Running:
    """A Stack whose watch() runs in a thread, as `serve` runs it after the start."""

    def __init__(self, sup: stack.Stack) -> None:
        self.stack = sup
        self.result: list[int] = []
        for service in sup.services:
            service.start()
        self.thread = threading.Thread(target=lambda: self.result.append(sup.watch()))
        self.thread.start()

    def finish(self) -> int:
        """Ctrl-C: stop watching, then stop everything; watch()'s answer."""
        self.stack.stopping.set()
        self.thread.join(timeout=10)
        self.stack.stop()
        assert not self.thread.is_alive()
        return self.result[0]


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        if run.thread.is_alive() or any(
            s.process and s.process.poll() is None for s in run.stack.services
        ):
            run.finish()


def _starts(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def _wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_crashed_service_restarts_with_back_off_and_the_others_keep_running(
    tmp_path: Path, running: list[Running], capsys: pytest.CaptureFixture[str]
) -> None:
    starts = tmp_path / "starts"
    crasher = _service("crasher", CRASHER, str(starts), cwd=tmp_path)
    steady = _service("steady", STEADY, cwd=tmp_path)
    sup = stack.Stack(
        [steady, crasher], restart=True, first_delay_s=0.3, max_delay_s=1.2, poll_s=0.05
    )
    run = Running(sup)
    running.append(run)
    assert steady.process is not None
    steady_pid = steady.process.pid

    _wait_for(lambda: len(_starts(starts)) >= 5)
    times = _starts(starts)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Never started again before its back-off (0.3, 0.6, 1.2 s, then capped) had passed; the
    # upper side depends on the machine's load (Python's own start), so the log is checked.
    for gap, delay in zip(gaps, (0.3, 0.6, 1.2, 1.2), strict=False):
        assert gap >= delay + 0.1, (gaps, delay)

    # The other service was never touched.
    assert steady.process.pid == steady_pid
    assert steady.process.poll() is None

    assert run.finish() == 0
    assert steady.process.poll() is not None
    assert crasher.process is not None
    assert crasher.process.poll() is not None
    err = capsys.readouterr().err
    assert "stack: crasher exited with code 3 after " in err
    for crash, delay in ((1, 0.3), (2, 0.6), (3, 1.2), (4, 1.2)):
        assert f"restarting in {delay:g} s (crash {crash} in a row)" in err
    assert "stack: starting crasher again" in err
    assert "steady" not in err


def test_a_killed_service_is_reported_by_signal_and_restarted(
    tmp_path: Path, running: list[Running], capsys: pytest.CaptureFixture[str]
) -> None:
    web = _service("web", STEADY, cwd=tmp_path)
    gateway = _service("gateway", STEADY, cwd=tmp_path)
    run = Running(stack.Stack([gateway, web], restart=True, first_delay_s=0.2, poll_s=0.05))
    running.append(run)
    assert web.process is not None
    assert gateway.process is not None
    first, gateway_pid = web.process.pid, gateway.process.pid
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: web.process is not None and web.process.pid != first)
    assert web.process.poll() is None
    assert gateway.process.pid == gateway_pid
    assert run.finish() == 0
    err = capsys.readouterr().err
    assert "stack: web was killed by SIGKILL after" in err
    assert "restarting in 0.2 s (crash 1 in a row); the other services keep running" in err


def test_a_service_that_stayed_up_starts_the_back_off_over(
    tmp_path: Path, running: list[Running], capsys: pytest.CaptureFixture[str]
) -> None:
    web = _service("web", STEADY, cwd=tmp_path)
    run = Running(stack.Stack([web], restart=True, first_delay_s=0.2, stable_s=0.5, poll_s=0.05))
    running.append(run)
    for _ in range(2):
        assert web.process is not None
        pid = web.process.pid
        time.sleep(0.7)  # longer than stable_s
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda pid=pid: web.process is not None and web.process.pid != pid)
    assert run.finish() == 0
    err = capsys.readouterr().err
    assert err.count("restarting in 0.2 s (crash 1 in a row)") == 2
    assert "was killed by SIGTERM" in err


def test_without_restart_a_dead_service_stops_the_stack(
    tmp_path: Path, running: list[Running], capsys: pytest.CaptureFixture[str]
) -> None:
    crasher = _service("crasher", CRASHER, str(tmp_path / "starts"), cwd=tmp_path)
    steady = _service("steady", STEADY, cwd=tmp_path)
    sup = stack.Stack([steady, crasher], poll_s=0.05)
    run = Running(sup)
    running.append(run)
    run.thread.join(timeout=10)
    assert run.result == [1]
    sup.stop()
    assert steady.process is not None
    assert steady.process.poll() is not None
    assert len(_starts(tmp_path / "starts")) == 1
    assert "stack: crasher exited with code 3; stopping" in capsys.readouterr().err

"""The supervisor: its `.env` handling, and a real start and stop of the whole stack."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))

import stack  # noqa: E402


def test_init_env_writes_fresh_private_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    assert stack.init_env(env_file)
    first = stack.parse_env_file(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    for name in stack.SECRET_NAMES:
        assert len(first[name]) >= 48
    assert first["LLM_SERVER_TOKEN"] != first["AUTH_SECRET"]
    other = tmp_path / "other.env"
    stack.init_env(other)
    assert stack.parse_env_file(other)["AUTH_SECRET"] != first["AUTH_SECRET"]


def test_init_env_keeps_an_existing_file_and_fills_gaps(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AUTH_SECRET='kept-as-is'\n# comment\nLLM_SERVER_TOKEN=\n")
    assert stack.init_env(env_file)
    values = stack.parse_env_file(env_file)
    assert values["AUTH_SECRET"] == "kept-as-is"
    assert len(values["LLM_SERVER_TOKEN"]) >= 48
    assert not stack.init_env(env_file)


def _descendants(pid: int) -> set[int]:
    """Every process whose session is `pid`'s child's or whose ancestor is `pid`."""
    found: set[int] = set()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(
    not (SCRIPTS.parent / "gateway" / "dist" / "server.js").exists()
    or not (SCRIPTS.parent / "web" / ".next" / "BUILD_ID").exists(),
    reason="gateway or web not built: run `make setup` (make test does)",
)
def test_serve_starts_all_three_and_ctrl_c_leaves_nothing_running() -> None:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "stack.py"), "serve", "--ephemeral"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = ""
        deadline = time.monotonic() + 300
        while not line.startswith("STACK_READY ") and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "stack.py exited before the stack was ready"
        urls = json.loads(line.removeprefix("STACK_READY "))
        for url in (f"{urls['llm']}/health/ready", f"{urls['gateway']}/health", urls["web"]):
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                assert response.status == 200, url
        children = _descendants(process.pid)
        assert len(children) >= 3
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)

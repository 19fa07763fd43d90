"""The supervisor: its `.env` handling, and a real start and stop of the whole stack."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

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


def test_init_env_makes_a_loose_env_file_private_when_it_adds_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APP_ENV=production\n")
    env_file.chmod(0o644)
    assert stack.init_env(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert set(stack.SECRET_NAMES) <= set(stack.parse_env_file(env_file))


def test_init_env_writes_a_private_file_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert stack.init_env(tmp_path / ".env")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_a_readable_env_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AUTH_SECRET=s\nLLM_SERVER_TOKEN=t\n")
    env_file.chmod(0o640)
    assert stack.read_env_file(env_file)["AUTH_SECRET"] == "s"
    err = capsys.readouterr().err
    assert "other users may read it (mode 0640)" in err
    assert f"chmod 600 {env_file}" in err
    env_file.chmod(0o600)
    stack.read_env_file(env_file)
    assert capsys.readouterr().err == ""
    assert stack.read_env_file(tmp_path / "absent.env") == {}


def test_the_data_directory_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        stack.prepare_data_dir(tmp_path / "data")
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        # One left readable by an earlier version is made private too.
        (tmp_path / "old").mkdir(mode=0o755)
        stack.prepare_data_dir(tmp_path / "old")
        assert stat.S_IMODE((tmp_path / "old").stat().st_mode) == 0o700
    finally:
        os.umask(old)


SECRETS = {
    "AUTH_SECRET": "auth-secret",
    "LLM_SERVER_TOKEN": "service-token",
    "GITHUB_CLIENT_SECRET": "oauth-secret",
    "METRICS_TOKEN": "metrics-token",
    "DATABASE_URL": "postgres://app:password@db/app",
}


def test_each_service_gets_only_the_variables_it_reads(tmp_path: Path) -> None:
    env = {
        **SECRETS,
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "LC_ALL": "C.UTF-8",
        "APP_ENV": "production",
        "LLM_MODEL_PATH": "/models/m.gguf",
        "WEB_TRUST_PROXY": "1",
    }
    services = {s.name: s.env for s in stack.build_services(env, tmp_path)}
    gateway, llm, web = services["gateway"], services["llm-server"], services["web"]
    # The gateway checks sign-ins and calls llm-server: it holds every secret.
    assert SECRETS.items() <= gateway.items()
    # llm-server checks the gateway's token and nothing else.
    assert llm["LLM_SERVER_TOKEN"] == "service-token"
    assert llm["LLM_MODEL_PATH"] == "/models/m.gguf"
    assert llm["APP_ENV"] == "production"
    assert not {"AUTH_SECRET", "GITHUB_CLIENT_SECRET", "METRICS_TOKEN", "DATABASE_URL"} & set(llm)
    # The web app only streams requests through: no secret at all.
    assert not set(SECRETS) & set(web)
    assert web["GATEWAY_URL"].startswith("http://127.0.0.1:")
    assert web["WEB_TRUST_PROXY"] == "1"
    for service_env in (llm, web):
        assert service_env["PATH"].endswith("/usr/bin")
        assert service_env["HOME"] == "/home/op"
        assert service_env["LC_ALL"] == "C.UTF-8"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_init_env_leaves_out_secrets_given_as_files(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AUTH_SECRET_FILE=/run/secrets/auth-secret\n")
    assert stack.init_env(env_file, environ={})
    values = stack.parse_env_file(env_file)
    assert "AUTH_SECRET" not in values
    assert len(values["LLM_SERVER_TOKEN"]) >= 48
    fresh = tmp_path / "fresh.env"
    assert stack.init_env(fresh, environ={"LLM_SERVER_TOKEN_FILE": "/run/secrets/token"})
    assert set(stack.parse_env_file(fresh)) == {"APP_ENV", "AUTH_SECRET"}


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
def test_serve_starts_all_three_and_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    log_path = tmp_path / "stack.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "stack.py"), "serve", "--ephemeral"],
        stdout=subprocess.PIPE,
        stderr=log,
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
        summary = _read_summary(process.stdout)
        assert f"Open {urls['public']}" in summary
        assert f"Data: {urls['data']}" in summary
        assert re.search(r"First admin: http://\S+/setup\?token=\S+", summary), summary
        for url in (f"{urls['llm']}/health/ready", f"{urls['gateway']}/health", urls["web"]):
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                assert response.status == 200, url
        children = _descendants(process.pid)
        assert len(children) >= 3
        # What each running process really received (its /proc/<pid>/environ).
        seen = {"llm_server": False, "dist/server.js": False, "server.mjs": False}
        for pid in children:
            command, environ = _cmdline(pid), _environ(pid)
            if "llm_server" in command:
                seen["llm_server"] = True
                assert "LLM_SERVER_TOKEN" in environ
                assert "AUTH_SECRET" not in environ
            elif "dist/server.js" in command:
                seen["dist/server.js"] = True
                # Run as `npm start` runs it: the same node flags (its young-generation size).
                npm_start = json.loads((stack.ROOT / "gateway" / "package.json").read_text())
                assert command.split()[1:] == npm_start["scripts"]["start"].split()[1:]
                assert {"LLM_SERVER_TOKEN", "AUTH_SECRET"} <= set(environ)
            elif "server.mjs" in command:
                seen["server.mjs"] = True
                assert not {"LLM_SERVER_TOKEN", "AUTH_SECRET"} & set(environ)
        assert all(seen.values()), seen
        # A healthy first start (empty database included) logs nothing at error level.
        assert not error_lines(log_path.read_text()), log_path.read_text()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        log.close()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)


def _read_summary(stdout: IO[str]) -> str:
    """The lines `serve` prints after STACK_READY, up to "Ctrl-C stops all three."."""
    lines: list[str] = []
    while not lines or "Ctrl-C" not in lines[-1]:
        line = stdout.readline()
        assert line, f"stack.py exited during its summary: {lines}"
        lines.append(line)
    return "".join(lines)


def error_lines(log: str) -> list[str]:
    """Lines of the services' log at error level or above: pino's JSON (level >= 50), the
    Python services' JSON (level error/critical), and plain lines (Next.js) saying error."""
    found = []
    for line in log.splitlines():
        _, _, text = line.partition("] ") if line.startswith("[") else ("", "", line)
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            level = entry.get("level")
            bad = (isinstance(level, int) and level >= 50) or (
                isinstance(level, str) and level.lower() in ("error", "critical", "fatal")
            )
        else:
            bad = bool(re.search(r"\bERROR\b|\bError\b|\u2a2f|Traceback", text))
        if bad:
            found.append(line)
    return found


def test_error_lines_finds_each_services_errors() -> None:
    log = "\n".join(
        [
            '[gateway] {"level":30,"msg":"database migrated"}',
            '[gateway] {"level":50,"msg":"Database schema mismatch"}',
            '[llm-server] {"level": "info", "logger": "uvicorn.error", "message": "Started"}',
            '[llm-server] {"level": "ERROR", "message": "model failed"}',
            "[web] \u2a2f Error: boom",
            "[web] web listening on http://127.0.0.1:3000",
            "stack: gateway exited with code 1",
        ]
    )
    assert error_lines(log) == [
        '[gateway] {"level":50,"msg":"Database schema mismatch"}',
        '[llm-server] {"level": "ERROR", "message": "model failed"}',
        "[web] \u2a2f Error: boom",
    ]


def test_public_url_reaches_gateway_and_web_and_decides_the_listener(tmp_path: Path) -> None:
    services = {s.name: s for s in stack.build_services({"WEB_PORT": "3000"}, tmp_path)}
    gateway, web = services["gateway"], services["web"]
    assert gateway.env["PUBLIC_URL"] == web.env["PUBLIC_URL"] == "http://localhost:3000"
    assert "WEB_ORIGIN" not in gateway.env
    # Every address of the machine: an unconfigured one reaches the page that names PUBLIC_URL.
    assert web.argv[-2:] == ["-H", "0.0.0.0"]  # noqa: S104
    # The web's health check is asked at the configured address.
    assert web.health_host == "localhost:3000"
    given = {"PUBLIC_URL": "http://192.0.2.2:3000", "WEB_ORIGIN": "http://old:3000"}
    services = {s.name: s for s in stack.build_services(given, tmp_path)}
    assert services["gateway"].env["PUBLIC_URL"] == "http://192.0.2.2:3000"
    assert services["web"].health_host == "192.0.2.2:3000"
    # The old name alone still works.
    assert stack.public_url({"WEB_ORIGIN": "https://chat.example.org"}) == (
        "https://chat.example.org"
    )
    assert stack.web_host({"PUBLIC_URL": "http://[2001:db8::1]:3000"}) == "::"
    assert stack.web_host({"WEB_HOST": "127.0.0.1"}) == "127.0.0.1"
    assert stack.local_web_url({"WEB_HOST": "::1", "WEB_PORT": "3100"}) == "http://[::1]:3100"


def test_every_address_that_works_is_listed() -> None:
    assert stack.working_urls({}) == ["http://localhost:3000", "http://127.0.0.1:3000"]
    assert stack.working_urls({"PUBLIC_URL": "http://127.0.0.1:3000/", "WEB_HOST": "::"}) == [
        "http://127.0.0.1:3000",
        "http://localhost:3000",
        "http://[::1]:3000",
    ]
    assert stack.working_urls({"PUBLIC_URL": "http://192.0.2.2:3000"}) == ["http://192.0.2.2:3000"]
    assert stack.working_urls({"PUBLIC_URL": "https://chat.example.org"}) == [
        "https://chat.example.org"
    ]


def test_the_summary_says_where_to_open_where_the_data_is_and_how_to_make_an_admin(
    tmp_path: Path,
) -> None:
    setup = (
        "SETUP (operator only, not logged): no admin account exists. Create it within 60 "
        "minutes with this one-time link: http://localhost:3000/setup?token=abc"
    )
    text = stack.summary({}, tmp_path, setup, ephemeral=False)
    assert "Open http://localhost:3000  (also http://127.0.0.1:3000)" in text
    assert "set PUBLIC_URL in .env" in text
    assert f"Data: {tmp_path} (SQLite database" in text
    assert "First admin: http://localhost:3000/setup?token=abc" in text
    later = stack.summary({"PUBLIC_URL": "http://192.0.2.2:3000"}, tmp_path, None, False)
    assert "Open http://192.0.2.2:3000\n" in later
    assert "PUBLIC_URL in .env" not in later
    assert "an admin account exists" in later

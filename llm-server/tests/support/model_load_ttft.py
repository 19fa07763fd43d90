"""Time to first token for a model that must be loaded first, against the same model already
loaded (the bench note of issue 16). From llm-server/, with its venv:

    .venv/bin/python tests/support/model_load_ttft.py [--rounds 5]

It starts llm-server (the real process, 2 threads) with a models file of three models: the
embedded Gemma 3 270M kept loaded, the same GGUF under a second id (`gemma-cold`) and the tiny
random model of `tiny_model.py`, both unloaded after 3 s idle. Each round waits until the two
are unloaded, then streams one short completion from the kept model, then from each of the
two (cold: loads it first) and the same request again (warm), each 1 s after the one before so
that every request starts from the same idle server (back to back, a request's time depended
on the request before it: 25 ms for the kept model, 83 ms for the warm copy). Prints every
measurement and the medians.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.tiny_model import write_tiny_model

PAUSE_S = 1.0
MODELS = """
[[models]]
id = "gemma"
path = "embedded"
keep_loaded = true
kv_cells = 4096
threads = 2

[[models]]
id = "gemma-cold"
path = "embedded"
kv_cells = 4096
threads = 2
idle_unload_s = 3

[[models]]
id = "tiny"
path = "{tiny}"
kv_cells = 1024
threads = 2
idle_unload_s = 3
"""


def first_token_seconds(http: httpx.Client, model: str, token: str) -> float:
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": 8, "stream": True}
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with http.stream("POST", "/v1/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                return time.perf_counter() - started
    raise RuntimeError(f"{model}: no token")


def wait_unloaded(http: httpx.Client, models: set[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = {m["id"]: m["state"] for m in http.get("/health/ready").json()["models"]}
        if all(states[m] == "unloaded" for m in models):
            return
        time.sleep(0.1)
    raise RuntimeError("the models were not unloaded")


def start(folder: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    tiny = write_tiny_model(folder / "tiny.gguf")
    (folder / "models.toml").write_text(MODELS.format(tiny=tiny))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "LLM_SERVER_TOKEN": token,
        "LLM_SERVER_PORT": str(port),
        "LLM_MODELS_FILE": str(folder / "models.toml"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_server"], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("llm-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    token = secrets.token_urlsafe(32)
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        process, url = start(Path(folder), token)
        try:
            with httpx.Client(base_url=url, timeout=120) as http:
                first_token_seconds(http, "gemma", token)  # warm-up
                for round_ in range(rounds):
                    wait_unloaded(http, {"gemma-cold", "tiny"})
                    plan = [("gemma", "kept loaded")]
                    plan += [(m, p) for m in ("gemma-cold", "tiny") for p in ("cold", "warm")]
                    for model, phase in plan:
                        time.sleep(PAUSE_S)  # each from an idle server
                        seconds = first_token_seconds(http, model, token)
                        results.setdefault((model, phase), []).append(seconds)
                        print(f"round {round_ + 1} {model} {phase}: {seconds * 1000:.1f} ms")
        finally:
            process.terminate()
            process.wait(timeout=30)
    print("\nmedian time to first token (ms):")
    for (model, phase), values in sorted(results.items()):
        print(f"  {model:10} {phase:11}: {statistics.median(values) * 1000:8.1f}")


if __name__ == "__main__":
    main()

"""The real process on a real socket: the official OpenAI SDK as client, disconnects, drain."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import TOKEN
from tests.pki import issue, make_ca

pytestmark = pytest.mark.model


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exported")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(scheme: str = "http", verify: ssl.SSLContext | bool = True, **env: str) -> Server:
    port = free_port()
    environment = {
        **os.environ,
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": TOKEN,
        "LLM_SERVER_PORT": str(port),
        "LLM_N_THREADS": "2",
        "LLM_DRAIN_TIMEOUT_S": "10",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_server"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, "llm-server exited while starting"
            try:
                if httpx.get(f"{url}/health/ready", verify=verify).status_code == 200:
                    return Server(process, url)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("llm-server did not become ready")
    except BaseException:
        process.kill()  # whatever went wrong, leave no server behind
        process.wait()
        raise


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server()
    yield running
    running.process.terminate()
    running.process.wait(timeout=30)


@pytest.fixture
def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)


def test_the_openai_sdk_chats(sdk: openai.OpenAI) -> None:
    [model] = sdk.models.list().data
    reply = sdk.chat.completions.create(
        model=model.id,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 8
    text = sdk.completions.create(model="default", prompt="One, two,", max_tokens=4).choices[0].text
    assert text


def test_the_openai_sdk_streams(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Count"}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None
    # The default model is a base model: its chat transcript may end by itself at a
    # stop before the cap, so the count follows the finish reason.
    finish = next(
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    )
    used = chunks[-1].usage.completion_tokens
    assert (used == 8) if finish == "length" else (finish == "stop" and 0 < used <= 8)


def test_the_sdk_sees_errors_as_openai_errors(sdk: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="context"):
        sdk.completions.create(model="default", prompt="word " * 9000, max_tokens=10)
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_a_client_leaving_mid_stream_frees_its_sequence(server: Server) -> None:
    body = {"prompt": "Once upon a time", "max_tokens": 2000, "stream": True}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, headers=headers) as r:
        lines = r.iter_lines()
        for _ in range(6):
            next(lines)
        assert server.metric("llm_running_sequences") == 1
    # 2,000 tokens take 20 s or more here: freed within 5 s means the disconnect ended it. The
    # bound is loose because a loaded machine (CI beside other jobs) delays the next step.
    left = time.monotonic()
    while server.metric("llm_running_sequences") != 0:
        assert time.monotonic() - left < 5.0, "the generation kept running after the disconnect"
        time.sleep(0.05)


def test_sigterm_drains_running_streams_then_exits() -> None:
    server = start_server(LLM_DRAIN_TIMEOUT_S="600")  # generous: the machine may be busy
    body = {"prompt": "Once upon a time", "max_tokens": 64, "stream": True}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, headers=headers) as r:
        lines = r.iter_lines()
        next(lines)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/health/ready").status_code == 503
        refused = httpx.post(f"{server.url}/v1/completions", json={"prompt": "x"}, headers=headers)
        assert refused.status_code == 503
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert len(rest) == 65  # 63 tokens left, the finish chunk and [DONE]: nothing was cut
    # uvicorn re-raises the signal it caught once shutdown is complete: -SIGTERM is a clean exit.
    assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)


def test_a_placeholder_token_stops_start_up_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llm_server"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "APP_ENV": "production", "LLM_SERVER_TOKEN": "changeme"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "llm-server: config error: set LLM_SERVER_TOKEN (a random string of at least 32 "
        "characters, shared with the gateway)"
    ]


# The connection refused or cut without an answer; a timeout would prove nothing.
CUT = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    """HTTPS with mutual TLS: only a client holding a certificate of LLM_TLS_CLIENT_CA_FILE
    gets through the handshake; streaming works over it; plain HTTP to the port fails."""
    ca = make_ca(tmp_path, "ca")
    other_ca = make_ca(tmp_path, "other-ca")
    cert = issue(tmp_path, "server", ca, "IP:127.0.0.1")
    client = issue(tmp_path, "gateway", ca, "DNS:gateway")
    stranger = issue(tmp_path, "stranger", other_ca, "DNS:gateway")
    trust = ssl.create_default_context(cafile=str(ca.cert))
    trust.load_cert_chain(client.cert, client.key)
    server = start_server(
        LLM_TLS_CERT_FILE=str(cert.cert),
        LLM_TLS_KEY_FILE=str(cert.key),
        LLM_TLS_CLIENT_CA_FILE=str(ca.cert),
        scheme="https",
        verify=trust,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        body = {"prompt": "One, two,", "max_tokens": 4, "stream": True}
        with httpx.stream(
            "POST",
            f"{server.url}/v1/completions",
            json=body,
            headers=headers,
            verify=trust,
            timeout=30,
        ) as response:
            assert response.status_code == 200
            events = [line for line in response.iter_lines() if line]
        assert events[-1] == "data: [DONE]"
        assert len(events) == 6  # four tokens, the finish chunk, [DONE]
        no_certificate = ssl.create_default_context(cafile=str(ca.cert))
        foreign = ssl.create_default_context(cafile=str(ca.cert))
        foreign.load_cert_chain(stranger.cert, stranger.key)
        for refused in (no_certificate, foreign):
            # Refused in the handshake (not a timeout): not even the health probes answer.
            with pytest.raises(CUT):
                httpx.get(f"{server.url}/health/live", verify=refused, timeout=30)
        with pytest.raises(CUT):
            httpx.get(server.url.replace("https", "http") + "/health/live", timeout=30)
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)

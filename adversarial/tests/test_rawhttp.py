"""Raw requests go out exactly as written; other spellings differ from the canonical path."""

from __future__ import annotations

import socket
import threading

from adversarial.rawhttp import parse_response, request, spellings


def test_spellings_are_distinct_and_never_the_canonical_path() -> None:
    out = spellings("/api/user/api-keys", "http://127.0.0.1:4000")
    assert "/api/user/api-keys" not in out
    assert len(out) == len(set(out)) >= 15
    for expected in (
        "/api/./user/api-keys",
        "/api/%2e/user/api-keys",
        "//api/user/api-keys",
        "/api/user/api-keys/",
        "/API/USER/API-KEYS",
        "http://127.0.0.1:4000/api/user/api-keys",
    ):
        assert expected in out


def test_parse_response_and_garbage() -> None:
    parsed = parse_response(b"HTTP/1.1 431 Too Large\r\nRetry-After: 3\r\n\r\nbody")
    assert (parsed.status, parsed.headers["retry-after"], parsed.body) == (431, "3", b"body")
    assert parse_response(b"").status == 0


def test_request_sends_the_target_unchanged() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            seen.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    port = server.getsockname()[1]
    response = request(f"http://127.0.0.1:{port}", "GET", "/a/./b/%2e/c//d", {"X-T": "1"})
    thread.join(5)
    server.close()
    assert response.status == 204
    assert seen[0].startswith(b"GET /a/./b/%2e/c//d HTTP/1.1\r\n")
    assert b"X-T: 1\r\n" in seen[0]

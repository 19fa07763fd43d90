"""HTTP/1.1 over a plain socket, for requests no client library would send as written:
un-normalised paths (`/./`, `%2e`, `//`), absolute-form targets, odd header sizes."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int  # 0 when the connection closed without a status line
    headers: dict[str, str]
    body: bytes


def parse_response(data: bytes) -> RawResponse:
    """The status line, headers (lower-cased names) and body of one answer (body as received:
    chunked bodies are not decoded, which is enough to search them)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return RawResponse(0, {}, data)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(parts[1]), headers, body)


def request(
    base_url: str,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    host: str | None = None,
    timeout: float = 20.0,
) -> RawResponse:
    """Send exactly `METHOD target HTTP/1.1` to the server of `base_url`, read to close."""
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host or url.netloc}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    chunks: list[bytes] = []
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return parse_response(b"".join(chunks))


def spellings(path: str, origin: str) -> list[str]:
    """Other spellings of `path` (an absolute path with at least two segments) that a naive
    router or a prefix check might treat differently from the canonical one."""
    segments = path.strip("/").split("/")
    first, rest = segments[0], "/".join(segments[1:])
    last_dot = path.rsplit("/", 1)
    out = [
        f"/{first}/./{rest}",
        f"/{first}/%2e/{rest}",
        f"/{first}/%2E/{rest}",
        f"//{first}/{rest}",
        f"/{first}//{rest}",
        f"{path}/",
        f"{path}//",
        path.upper(),
        f"/{first.upper()}/{rest}",
        f"/{first}%2f{rest.replace('/', '%2f')}",
        f"/{first}/x/../{rest}",
        f"/{first}/x/%2e%2e/{rest}",
        f"{path};x=1",
        f"{path}%00",
        f"{path}%20",
        f"{path}?",
        f"{path}#frag",
        f"{origin}{path}",
        f"{origin}/{first}/./{rest}",
        f"{last_dot[0]}/%{ord(last_dot[1][0]):02x}{last_dot[1][1:]}" if last_dot[1] else path,
    ]
    return list(dict.fromkeys(s for s in out if s != path))

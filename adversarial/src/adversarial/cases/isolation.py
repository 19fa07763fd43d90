"""Service isolation: llm-server trusts only the gateway; web and llm-server hold no secret
they do not need; the data the gateway writes is private."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from adversarial import openapi, rawhttp
from adversarial.cases.auth import external_address
from adversarial.procs import ROOT
from adversarial.registry import Context, Skip, breach, case

PROBES = ("/health/live", "/health/ready")


@case(
    "isolation",
    "llm-server-needs-service-token",
    "every llm-server route but the probes, in every spelling, without/with a wrong token: 401",
)
def service_token(ctx: Context) -> None:
    stack = ctx.stack
    llm = stack.llm[0].url
    document = openapi.load(f"{llm}/openapi.json", {"authorization": f"Bearer {stack.token}"})
    routes = [r for r in openapi.routes(document) if r.path not in PROBES]
    routes.append(openapi.Route("GET", "/openapi.json", "/openapi.json"))
    routes.append(openapi.Route("GET", "/metrics", "/metrics"))
    assert len(routes) >= 5, f"only {len(routes)} llm-server routes"
    bad = []
    auths: list[dict[str, str]] = [
        {},
        {"authorization": f"Bearer {secrets.token_urlsafe(40)}"},
        {"authorization": f"Bearer {stack.token[:-1]}"},
        {"authorization": f"bearer {stack.token} x"},
        {"authorization": f"Basic {stack.token}"},
        {"x-api-key": stack.token},
    ]
    for route in routes:
        body = b'{"model":"default","prompt":"x","max_tokens":1}' if route.method == "POST" else b""
        for target in [route.path, *rawhttp.spellings(route.path, llm)]:
            for headers in auths:
                response = rawhttp.request(
                    llm, route.method, target, {"content-type": "application/json", **headers}, body
                )
                ctx.tally.auth_attacks += 1
                ctx.count_status(response.status)
                if breach(response.status):
                    bad.append(f"{route.method} {target} {list(headers)}: {response.status}")
    assert not bad, "llm-server answered without its token:\n" + "\n".join(bad[:30])


@case(
    "isolation",
    "llm-server-loopback-only",
    "llm-server (default settings) cannot be reached on the machine's network address",
)
def loopback_only(ctx: Context) -> None:
    stack = ctx.stack
    address = external_address()
    if address is None:
        raise Skip("no non-loopback IPv4 address on this machine")
    port = int(stack.llm[0].url.rsplit(":", 1)[1])
    ctx.tally.auth_attacks += 1
    try:
        httpx.get(f"http://{address}:{port}/health/live", timeout=3)
    except httpx.ConnectError:
        return
    raise AssertionError(f"llm-server answered on {address}:{port}")


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    out.append(int(entry.name))
            except ProcessLookupError:
                continue
    return out


@case(
    "isolation",
    "secrets-only-where-needed",
    "through `stack.py serve --ephemeral`: web holds neither AUTH_SECRET nor LLM_SERVER_TOKEN, "
    "llm-server no AUTH_SECRET",
)
def secrets_placement(ctx: Context) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "stack.py"), "serve", "--ephemeral"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        urls: dict[str, str] = {}
        for line in proc.stdout:
            if line.startswith("STACK_READY "):
                urls = json.loads(line.split(" ", 1)[1])
                break
            if time.monotonic() > deadline:
                break
        assert urls, "stack.py never printed STACK_READY"
        found: dict[str, set[str]] = {}
        for pid in [p for p in group_members_of_children(proc.pid)]:
            env = environ_of(pid)
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            role = "web" if "server.mjs" in cmd else "llm" if "llm_server" in cmd else "gateway"
            found.setdefault(role, set()).update(
                name for name in ("AUTH_SECRET", "LLM_SERVER_TOKEN") if env.get(name)
            )
        assert "web" in found and "llm" in found, f"processes not found: {found}"
        assert not found["web"], f"web holds {sorted(found['web'])}"
        assert "AUTH_SECRET" not in found["llm"], "llm-server holds AUTH_SECRET"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def group_members_of_children(parent: int) -> list[int]:
    """The service processes stack.py started (each leads its own process group)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            out.extend(group_members(int(entry.name)))
    return out


@case(
    "isolation",
    "private-data-files",
    "the gateway's data directory and SQLite file are not readable by other local users",
)
def private_data(ctx: Context) -> None:
    stack = ctx.stack
    for path in (stack.database.parent, stack.database):
        mode = stat.S_IMODE(path.stat().st_mode)
        ctx.tally.auth_attacks += 1
        assert not mode & 0o007, f"{path} is mode {oct(mode)}: other users can read it"

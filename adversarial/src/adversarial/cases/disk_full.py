"""The gateway's database disk fills up (issue 12's "disk full for the DB" fault): the data
directory is a small tmpfs of its own, filled to the last byte while clients keep calling."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from adversarial.cases.faults import FAULT_GATEWAY_ENV, check_billing, one_stream
from adversarial.registry import Context, Skip, case
from adversarial.sse import StreamResult, bearer
from adversarial.stack import WEB_ORIGIN, fresh_ip, own_stack


@contextlib.contextmanager
def small_filesystem(size_mb: int) -> Iterator[Path]:
    """A temporary directory whose `data/` is a tmpfs of `size_mb` MiB (root only)."""
    with tempfile.TemporaryDirectory(prefix="adversarial-disk-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(data)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode != 0:
            raise Skip(f"cannot mount a tmpfs for the data directory: {mounted.stderr.strip()}")
        try:
            yield Path(tmp)
        finally:
            subprocess.run(["umount", "-l", str(data)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write zeros into `directory/filler` until the filesystem refuses (ENOSPC)."""
    filler = directory / "filler"
    block = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
        # The last partial block: fill the bytes a 1 MiB write could not take.
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


def disk_is_full(directory: Path) -> bool:
    try:
        fd = os.open(directory / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"\0" * 8192)
        finally:
            os.close(fd)
    except OSError as error:
        return error.errno == errno.ENOSPC
    return False


@case(
    "faults",
    "database-disk-full",
    "the gateway's data disk full: every answer 2xx or 503 + Retry-After (never 500), the "
    "gateway stays up, and once space is freed calls are answered and every one billed once",
)
def db_disk_full(ctx: Context) -> None:
    with (
        small_filesystem(64) as workdir,
        own_stack(gateway_env=FAULT_GATEWAY_ENV, workdir=workdir) as stack,
    ):
        user = stack.account("disk-full")
        data = stack.database.parent
        ctx.tally.faults_injected += 1
        problems: list[str] = []
        filler = fill(data)
        assert disk_is_full(data), "the tmpfs still took writes after filling it"
        answered: list[StreamResult] = []
        seen: list[str] = []
        for _ in range(4):
            result = asyncio.run(one_stream(stack, user.api_key, 8))
            seen.append(f"stream {result.status}")
            if result.status == 200:
                answered.append(result)
            elif result.status != 503:
                problems.append(f"API-key stream: {result.status} {result.body[:160]}")
        calls: dict[str, Callable[[], httpx.Response]] = {
            "sign-in": lambda: httpx.post(
                f"{stack.gw}/api/auth/sign-in/email",
                json={"email": user.email, "password": user.password},
                headers={"origin": WEB_ORIGIN, "x-forwarded-for": fresh_ip()},
                timeout=60,
            ),
            "new conversation": lambda: httpx.post(
                f"{stack.gw}/api/conversations",
                json={},
                headers=bearer(user.session),
                timeout=60,
            ),
            "usage": lambda: httpx.get(
                f"{stack.gw}/api/user/usage", headers=bearer(user.session), timeout=60
            ),
        }
        for name, call in calls.items():
            answer = call()
            seen.append(f"{name} {answer.status_code}")
            if answer.status_code >= 500 and (
                answer.status_code != 503 or not answer.headers.get("retry-after")
            ):
                problems.append(f"{name}: {answer.status_code} {answer.text[:160]}")
        if not stack.gateway.alive:
            problems.append(f"the gateway exited:\n{stack.gateway.tail()}")
        filler.unlink()
        (data / "probe").unlink(missing_ok=True)
        freed_at = time.monotonic()
        while httpx.get(f"{stack.gw}/health/ready", timeout=30).status_code != 200:
            if time.monotonic() - freed_at > 30:
                problems.append("still not ready 30 s after space was freed")
                break
            time.sleep(0.5)
        print(f"    ready again {time.monotonic() - freed_at:.1f} s after space was freed")
        for _ in range(2):
            result = asyncio.run(one_stream(stack, user.api_key, 8))
            if result.status == 200:
                answered.append(result)
            else:
                problems.append(f"stream after freeing: {result.status} {result.body[:200]}")
        if answered:
            try:
                check_billing(ctx, stack, user.api_key_id, answered, exact=True)
            except AssertionError as error:
                problems.append(f"usage after space was freed: {error}")
        assert not problems, "\n".join([*problems, "answers: " + ", ".join(seen)])
        print("    answers with the disk full: " + ", ".join(seen))
        ctx.tally.faults_survived += 1

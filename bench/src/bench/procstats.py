"""RSS and CPU of a server's process tree (or several trees together: a proxy and the model
server behind it), sampled from /proc while a load runs."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStats:
    rss_peak_mb: float
    rss_mean_mb: float
    rss_end_mb: float  # at stop(): what the server still holds when the load ends
    cpu_percent: float  # of one core, averaged over the run (200 = both cores of 2)


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def _sample(pids: tuple[int, ...]) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) of the trees rooted at `pids`, together."""
    rss, cpu = 0, 0.0
    for p in {p for pid in pids for p in _tree(pid)}:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return rss, cpu


class ProcSampler:
    """Samples the trees rooted at `pids` every `interval` seconds between start() and stop()."""

    def __init__(self, *pids: int, interval: float = 0.5) -> None:
        self._pids, self._interval = pids, interval
        self._rss: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = self._t0 = 0.0

    def start(self) -> None:
        rss, self._cpu0 = _sample(self._pids)
        self._t0 = time.monotonic()
        self._rss.append(rss)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._rss.append(_sample(self._pids)[0])

    async def stop(self) -> ProcStats:
        if self._task:
            self._task.cancel()
        rss, cpu = _sample(self._pids)
        self._rss.append(rss)
        seconds = max(1e-9, time.monotonic() - self._t0)
        mb = 1024 * 1024
        return ProcStats(
            max(self._rss) / mb,
            sum(self._rss) / len(self._rss) / mb,
            rss / mb,
            100 * (cpu - self._cpu0) / seconds,
        )

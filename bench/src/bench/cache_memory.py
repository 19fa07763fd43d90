"""The host memory each server's prompt cache holds during a run, at its peak and at the end:

- llm-server: its host-memory prefix cache's `llm_prefix_cache_host_bytes` (and `_entries`,
  `_restored_tokens`, `_hits`, `_saved`) from `GET /metrics`, which takes the service token,
  scraped every second;
- llama-server: its `--cache-ram` prompt cache's `cache state: N prompts, X MiB (limits: …)`
  lines, which it logs (at `--log-verbosity 4`) each time the cache changes or is searched:
  the log lines written while the run lasted are read at the end.

Other servers report nothing here (their figures stay unknown, not zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.targets import RunningTarget

MIB = 2**20
HOST_PREFIX = "llm_prefix_cache_host_"
CACHE_STATE = re.compile(r"cache state: (\d+) prompts, ([0-9.]+) MiB")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) ([-+0-9.eE]+|NaN|[+-]Inf)$")


@dataclass(frozen=True)
class CacheSample:
    mib: float
    entries: float


def prometheus_values(text: str, prefix: str) -> dict[str, float]:
    """The unlabelled samples of Prometheus' text format whose name starts with `prefix`,
    keyed by the rest of the name (labelled samples, e.g. histogram buckets, are left out)."""
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if match and match.group(1).startswith(prefix):
            out[match.group(1).removeprefix(prefix)] = float(match.group(2))
    return out


def llama_cache_states(log: str) -> list[CacheSample]:
    """Every `cache state: N prompts, X MiB` line of a llama-server log, in order."""
    return [CacheSample(float(m.group(2)), float(m.group(1))) for m in CACHE_STATE.finditer(log)]


def figures(samples: list[CacheSample], extra: dict[str, float] | None = None) -> dict[str, float]:
    """`cache_mib_peak`, `cache_mib_end`, `cache_entries_end` (none without samples)."""
    if not samples:
        return {}
    return {
        "cache_mib_peak": max(s.mib for s in samples),
        "cache_mib_end": samples[-1].mib,
        "cache_entries_end": samples[-1].entries,
        **(extra or {}),
    }


class CacheWatcher:
    """Watches `server`'s host-memory cache between start() and stop()."""

    def __init__(self, server: RunningTarget, interval: float = 1.0) -> None:
        self._server, self._interval = server, interval
        self._samples: list[CacheSample] = []
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._log_offset = 0

    @property
    def _log(self) -> Path | None:
        return self._server.log_path if self._server.name == "llama-server" else None

    async def start(self) -> None:
        if self._server.name == "llm-server":
            await self._scrape()
            self._first = dict(self._last)
            self._task = asyncio.create_task(self._scrape_forever())
        elif self._log and self._log.exists():
            self._log_offset = self._log.stat().st_size

    async def stop(self) -> dict[str, float]:
        """The figures over the run (counters as increases since start())."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._scrape()
            counters = ("restored_tokens", "hits", "misses", "saved")
            return figures(
                self._samples,
                {
                    f"cache_{name}": self._last[f"{name}_total"]
                    - self._first.get(f"{name}_total", 0.0)
                    for name in counters
                    if f"{name}_total" in self._last
                },
            )
        if self._log and self._log.exists():
            with self._log.open("rb") as log:
                log.seek(self._log_offset)
                return figures(llama_cache_states(log.read().decode(errors="replace")))
        return {}

    async def _scrape_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._scrape()

    async def _scrape(self) -> None:
        headers = {"Authorization": f"Bearer {self._server.token}"}
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(self._server.url + "/metrics", headers=headers)
        except httpx.HTTPError:
            return  # a missed scrape under load; the next one counts
        values = prometheus_values(response.text, HOST_PREFIX)
        if response.status_code == 200 and "bytes" in values:
            self._last = values
            self._samples.append(CacheSample(values["bytes"] / MIB, values.get("entries", 0.0)))

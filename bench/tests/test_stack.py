"""Pure parts of `python -m bench.stack`: LiteLLM's config, the whole-stack targets, the
closed-loop settings and flags, the ratios and the issue's targets, the report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from bench.cli import parse_presets
from bench.gw.procs import litellm_config
from bench.stack import QUICK, all_medians, closed_settings, parser
from bench.stack_report import goals, ratio, stack_markdown, verdicts
from bench.stack_targets import MODEL_NAME, STACK_STARTERS, ProxiedTarget
from bench.targets import RunningTarget


class Upstream:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token


class Words:
    def tokenize(self, text: str) -> list[int]:
        return [len(w) for w in text.split()]

    def end_of_generation_tokens(self) -> list[int]:
        return [1, 106]


def test_litellm_config_points_at_the_upstreams_v1_with_master_key() -> None:
    text = litellm_config(Upstream("http://127.0.0.1:9", ""), "sk-master", MODEL_NAME, "gemma")
    config = yaml.safe_load(text)
    (entry,) = config["model_list"]
    assert entry["model_name"] == "default"
    assert entry["litellm_params"]["model"] == "openai/gemma"
    assert entry["litellm_params"]["api_base"] == "http://127.0.0.1:9/v1"
    # llama-server checks no key; the OpenAI SDK inside LiteLLM refuses an empty one.
    assert entry["litellm_params"]["api_key"] == "none"
    assert config["general_settings"]["master_key"] == "sk-master"


def test_litellm_config_passes_an_upstream_token_on() -> None:
    text = litellm_config(Upstream("http://h:1", "secret-token"), "sk-m")
    entry = yaml.safe_load(text)["model_list"][0]
    assert entry["litellm_params"]["api_key"] == "secret-token"
    assert entry["model_name"] == "stub"  # the gateway benchmark's default is unchanged


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stopped = False

    def poll(self) -> int | None:
        return 0 if self.stopped else None


def test_proxied_target_samples_and_stops_both(tmp_path: Path) -> None:
    order: list[str] = []

    class Backend(RunningTarget):
        def stop(self) -> None:
            order.append("backend")

    class Front:
        url, token = "http://front", "key"

        def stop(self) -> None:
            order.append("front")

    backend = Backend("llm", "http://b", "tok", FakeProcess(22), {"ignore_eos": True})  # type: ignore[arg-type]
    folder = tmp_path / "db"
    folder.mkdir()
    target = ProxiedTarget(
        "stack", "http://front", "key", FakeProcess(11),  # type: ignore[arg-type]
        front=Front(), backend=backend, cleanup=folder,  # type: ignore[arg-type]
    )  # fmt: skip
    assert target.pids == (11, 22)
    target.stop()
    assert order == ["front", "backend"]
    assert not folder.exists()


def test_both_stacks_are_started_by_name() -> None:
    assert set(STACK_STARTERS) == {"stack", "litellm"}


def test_closed_settings_every_shape_at_every_level_through_the_proxies(tmp_path: Path) -> None:
    args = parser().parse_args(["--levels", "16", "32", "--shapes", "sdk", "tuned"])
    settings = closed_settings(args, Path("m.gguf"), Words(), tmp_path)  # type: ignore[arg-type]
    assert [w.key for w in settings.plan] == [
        "closed c=16 prompt=32 sdk",
        "closed c=16 prompt=32 tuned",
        "closed c=32 prompt=32 sdk",
        "closed c=32 prompt=32 tuned",
    ]
    assert settings.batched_levels == []
    assert settings.starters is STACK_STARTERS
    assert settings.targets == ["stack", "litellm"]
    assert settings.eog_tokens == (1, 106)


def test_quick_preset_and_explicit_flags_win() -> None:
    args = parse_presets(parser(), ["--quick", "--users", "6"], {"--quick": QUICK})
    assert args.levels == [2] and args.rounds == 1 and args.turns == 3
    assert args.users == 6
    defaults = parser().parse_args([])
    assert defaults.levels == [16, 32] and defaults.parts == ["closed", "conversation"]


MEDIANS: dict[str, dict[str, dict[str, float]]] = {
    "closed c=16 prompt=32 sdk": {
        "stack": {"ttft_p99_ms": 400.0, "output_tokens_per_s": 160.0},
        "litellm": {"ttft_p99_ms": 1000.0, "output_tokens_per_s": 150.0},
    },
    "closed c=32 prompt=32 sdk": {
        "stack": {"ttft_p99_ms": 900.0, "output_tokens_per_s": 140.0},
        "litellm": {"ttft_p99_ms": 1000.0, "output_tokens_per_s": 150.0},
    },
    "conversations": {
        "stack": {"later_ttft_p50_ms": 300.0, "later_ttft_p99_ms": 800.0},
        "litellm": {"later_ttft_p50_ms": 1000.0},
    },
}


def test_ratio_is_stack_over_litellm_and_nan_without_both() -> None:
    assert ratio(MEDIANS["closed c=16 prompt=32 sdk"], "ttft_p99_ms") == 0.4
    assert math.isnan(ratio(MEDIANS["conversations"], "later_ttft_p99_ms"))
    assert math.isnan(ratio({"stack": {"x": 1.0}, "litellm": {"x": 0.0}}, "x"))


def test_verdicts_mark_each_target_met_not_met_or_unknown() -> None:
    rows = verdicts(MEDIANS, list(MEDIANS)[:2])
    by_target = {r["target"]: r for r in rows}
    assert by_target["16 streams TTFT p99 ≤ 0.8×"]["met"] is True
    assert by_target["16 streams out tok/s ≥ 1×"]["met"] is True
    assert by_target["32 streams TTFT p99 ≤ 0.8×"]["met"] is False  # 0.9
    assert by_target["32 streams out tok/s ≥ 1×"]["met"] is False  # 0.93
    assert by_target["conversations turns 2+ TTFT p50 ≤ 0.8×"]["met"] is True
    assert by_target["conversations turns 2+ TTFT p99 ≤ 0.7×"]["met"] is None  # no litellm p99


def test_goals_judge_only_the_sdk_request_at_16_and_32_streams() -> None:
    keys = ["closed c=2 prompt=32 sdk", "closed c=16 prompt=32 tuned", "closed c=32 prompt=32 sdk"]
    workloads = {g.workload for g in goals(keys)}
    assert workloads == {"closed c=32 prompt=32 sdk", "conversations"}
    # A part that did not run has no verdict.
    assert all(
        r["target"].startswith("32")
        for r in verdicts({k: MEDIANS[k] for k in list(MEDIANS)[1:2]}, keys)
    )


def _result() -> dict[str, Any]:
    closed = {
        "workloads": [{"key": "closed c=16 prompt=32 sdk"}],
        "medians": {"closed c=16 prompt=32 sdk": MEDIANS["closed c=16 prompt=32 sdk"]},
    }
    conversation = {
        "config": {
            "command": "python -m bench.stack",
            "date": "d",
            "minutes": 1.0,
            "last_prompt_tokens_about": 200,
            "turns": 2,
        },
        "medians": MEDIANS["conversations"],
    }
    result: dict[str, Any] = {"closed": closed, "conversation": conversation}
    result["verdicts"] = verdicts(all_medians(result), ["closed c=16 prompt=32 sdk"])
    return result


def test_report_side_by_side_with_ratio_rows_and_targets() -> None:
    text = stack_markdown(_result(), "header")
    assert "| closed c=16 prompt=32 sdk | **stack / litellm** | – | 0.40 | 1.07 |" in text
    assert "stack / litellm: turns 2+ TTFT p50 0.30" in text
    assert "| 16 streams TTFT p99 ≤ 0.8× | 0.40 | **met** |" in text
    assert "| conversations turns 2+ TTFT p99 ≤ 0.7× | – | no figure |" in text

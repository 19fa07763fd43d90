"""The PNG charts of the conversation workload and of `python -m bench.stack`, drawn from small
results of the structure the harnesses write (as in memory, NaN, and as read back from JSON,
None), and the harnesses' writer drawing them beside the JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from bench import conversation
from bench.chart import chart, panels
from bench.conv_chart import (
    cache_panel,
    conversation_chart,
    has_cache_figures,
    reuse_panel,
    stack_chart,
    ttft_panel,
    turn_count,
    turn_series,
)
from bench.metrics import clean_json

PNG = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


def per_turn(ttft50: list[float], reused: list[float], errors: int = 0) -> dict[str, Any]:
    """A target's flat medians for len(ttft50) turns, as summarize_conversations keys them."""
    out: dict[str, Any] = {"later_reused_fraction": reused[-1] if reused else NAN}
    for k, (p50, share) in enumerate(zip(ttft50, reused, strict=True), start=1):
        out |= {
            f"turn{k}_ttft_p50_ms": p50,
            f"turn{k}_ttft_p99_ms": 2 * p50,
            f"turn{k}_reused_fraction": share,
            f"turn{k}_errors": errors if k == 1 else 0,
        }
    return out


def conversation_result(cache: bool, turns: int = 3) -> dict[str, Any]:
    ours = per_turn([100.0, 200.0, 300.0][:turns], [0.5, 0.8, 0.9][:turns])
    ref = per_turn([400.0, 500.0, NAN][:turns], [0.3, 0.1, NAN][:turns], errors=2)
    if cache:
        ours |= {"cache_mib_peak": 300.0, "cache_mib_end": 250.0}
        ref |= {"cache_mib_peak": 600.0, "cache_mib_end": 600.0}
    return {
        "config": {
            "turns": turns,
            "date": "20261203-000000",
            "last_prompt_tokens_about": 900,
            "args": {"users": 4, "turns": turns, "slots": 2, "cache_mib": 64, "rounds": 1},
        },
        "measurements": [],
        "medians": {"llm-server": ours, "llama-server": ref, "llama-cpp-python": {}},
    }


TARGETS = ["llm-server", "llama-server", "llama-cpp-python"]


def closed_result() -> dict[str, Any]:
    """bench.runner's result for the stack's closed loop: 16 and 32 streams of `sdk`."""
    workloads = [
        {"key": f"closed c={c} prompt=32 sdk", "kind": "closed", "prompt": 32, "concurrency": c,
         "shape": "sdk"}
        for c in (16, 32)
    ]  # fmt: skip
    medians = {
        w["key"]: {
            "stack": {"output_tokens_per_s": 120.0, "ttft_p50_ms": 900.0, "ttft_p99_ms": 1400.0},
            "litellm": {"output_tokens_per_s": 100.0, "ttft_p50_ms": 1200.0, "ttft_p99_ms": None},
        }
        for w in workloads
    }
    return {"workloads": workloads, "measurements": [], "batched_bench": [], "medians": medians,
            "batched_bench_medians": {}}  # fmt: skip


def stack_result(parts: tuple[str, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {"verdicts": [], "config": {"date": "20261203-000000"}}
    if "closed" in parts:
        result["closed"] = closed_result()
    if "conversation" in parts:
        conv = conversation_result(cache=True)
        conv["medians"] = {"stack": conv["medians"]["llm-server"],
                           "litellm": conv["medians"]["llama-server"]}  # fmt: skip
        result["conversation"] = conv
    return result


def is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG


def data(values: Any) -> list[float]:
    """A line's x or y data as floats."""
    return [float(v) for v in np.asarray(values, dtype=float)]


def legend_labels(axis: Axes) -> list[str]:
    legend = axis.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def one_axis() -> Axes:
    _, axes = panels(1, 1, 6)
    axis: Axes = axes[0][0]
    return axis


def test_turn_series_reads_turn_keys_with_nan_for_missing_and_none() -> None:
    medians = {"a": {"turn1_ttft_p50_ms": 5, "turn2_ttft_p50_ms": None}}
    series = turn_series(medians, "a", "ttft_p50_ms", 3)
    assert series[0] == 5.0
    assert math.isnan(series[1]) and math.isnan(series[2])
    assert all(math.isnan(v) for v in turn_series(medians, "absent", "ttft_p50_ms", 2))


def test_turn_count_falls_back_to_the_args_of_older_runs() -> None:
    assert turn_count({"turns": 6, "args": {"turns": 3}}) == 6
    assert turn_count({"args": {"turns": 4}}) == 4  # conversation-20261203-052744.json


def test_ttft_panel_draws_p50_solid_and_p99_dashed_per_target_in_one_colour() -> None:
    axis = one_axis()
    ttft_panel(axis, conversation_result(cache=False)["medians"], TARGETS, 3)
    lines = axis.get_lines()
    assert len(lines) == 2 * len(TARGETS)
    p50, p99 = lines[0], lines[1]
    assert p50.get_linestyle() == "-" and p99.get_linestyle() == "--"
    assert p50.get_color() == p99.get_color() != lines[2].get_color()
    assert data(p50.get_xdata()) == [1, 2, 3]
    assert data(p50.get_ydata()) == [100.0, 200.0, 300.0]
    assert data(p99.get_ydata()) == [200.0, 400.0, 600.0]
    labels = legend_labels(axis)
    assert "llama-server p50 (2 errors)" in labels and "llm-server p50" in labels
    assert axis.get_yscale() == "log"


def test_reuse_panel_is_percent_and_names_targets_that_report_none() -> None:
    axis = one_axis()
    reuse_panel(axis, conversation_result(cache=False)["medians"], TARGETS, 3)
    ours = axis.get_lines()[0]
    assert data(ours.get_ydata()) == pytest.approx([50.0, 80.0, 90.0])
    assert legend_labels(axis) == ["llm-server", "llama-server", "llama-cpp-python (not reported)"]
    assert axis.get_ylim() == (0, 100)


def test_cache_panel_bars_peak_and_end_per_target_with_reuse_in_the_label() -> None:
    medians = conversation_result(cache=True)["medians"]
    assert has_cache_figures(medians, TARGETS)
    assert not has_cache_figures(conversation_result(cache=False)["medians"], TARGETS)
    axis = one_axis()
    cache_panel(axis, medians, TARGETS)
    heights = [bar.get_height() for bar in axis.patches if isinstance(bar, Rectangle)]
    assert heights[:2] == [300.0, 600.0] and heights[3:5] == [250.0, 600.0]  # peak, then end
    assert math.isnan(heights[2]) and math.isnan(heights[5])  # reported nothing: no bar
    assert [t.get_text() for t in axis.texts] == ["300", "600", "", "250", "600", ""]
    ticks = [t.get_text() for t in axis.get_xticklabels()]
    assert ticks[0] == "llm-server\n90% reused, turns 2+"
    assert ticks[2] == "llama-cpp-python"


@pytest.mark.parametrize("cache", [True, False])
def test_conversation_chart_writes_a_png_in_memory_and_from_json(
    tmp_path: Path, cache: bool
) -> None:
    result = conversation_result(cache)
    conversation_chart(result, TARGETS, tmp_path / "a.png")
    assert is_png(tmp_path / "a.png")
    from_json = json.loads(json.dumps(clean_json(result)))  # NaN → None
    conversation_chart(from_json, TARGETS, tmp_path / "b.png")
    assert is_png(tmp_path / "b.png")


@pytest.mark.parametrize("parts", [("closed", "conversation"), ("closed",), ("conversation",), ()])
def test_stack_chart_draws_the_parts_that_ran(tmp_path: Path, parts: tuple[str, ...]) -> None:
    path = tmp_path / "stack.png"
    stack_chart(stack_result(parts), ["stack", "litellm"], path)
    assert is_png(path) == bool(parts)


def test_closed_loop_chart_is_unchanged_by_the_shared_panels(tmp_path: Path) -> None:
    chart(closed_result(), ["stack", "litellm"], tmp_path / "c.png", "closed")
    assert is_png(tmp_path / "c.png")
    chart({"workloads": [], "medians": {}}, ["stack"], tmp_path / "none.png", "none")
    assert not (tmp_path / "none.png").exists()


def test_write_draws_each_png_after_both_json_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, list[str]]] = []

    def draw(result: dict[str, Any], path: Path) -> None:
        seen.append((path.name, sorted(p.name for p in tmp_path.glob("*.json"))))
        path.write_bytes(PNG)

    result = conversation_result(cache=False)
    conversation.write(tmp_path, "20261203-000000", result, "| t |\n", draw, prefix="stack")
    jsons = ["stack-20261203-000000.json", "stack-latest.json"]
    assert seen == [("stack-20261203-000000.png", jsons), ("stack-latest.png", jsons)]
    written = json.loads((tmp_path / "stack-latest.json").read_text())
    assert written["medians"]["llama-server"]["turn3_ttft_p50_ms"] is None  # NaN as JSON has it
    assert "| t |" in capsys.readouterr().out

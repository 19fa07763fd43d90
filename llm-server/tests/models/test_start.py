"""A bad models file stops the real process at start: one line naming the file's line, exit
status 1, no traceback. No model is loaded: the file is refused before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOKEN

GOOD = """\
[[models]]
id = "first"
path = "{path}"

[[models]]
id = "second"
aliases = ["two"]
path = "{path}"
slots = 2
"""


def start(tmp_path: Path, text: str, **env: str) -> subprocess.CompletedProcess[str]:
    models = tmp_path / "models.toml"
    models.write_text(text)
    environment = {
        **os.environ,
        "APP_ENV": "production",
        "LLM_SERVER_TOKEN": TOKEN,
        "LLM_SERVER_PORT": "0",
        "LLM_MODELS_FILE": str(models),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "llm_server"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("slots = 2", "slots = = 2"), "models.toml line 9, column"),
        (
            ("slots = 2", "slot = 2"),
            "models.toml line 9: [[models]] #2 ('second') slot: unknown key",
        ),
        (('id = "second"', 'id = "FIRST"'), "models.toml line 6: [[models]] #2 ('FIRST') id: "),
        (('aliases = ["two"]', 'aliases = ["first"]'), "models.toml line 7: [[models]] #2"),
        (("slots = 2", 'slots = "2"'), "models.toml line 9: [[models]] #2 ('second') slots: "),
        (("slots = 2", "slots = 0"), "models.toml line 9: [[models]] #2 ('second') slots: "),
        (("slots = 2", "slots = 2\npath = 'x'"), "models.toml line 10, column"),  # twice: TOML
    ],
)
def test_a_bad_models_file_stops_the_start_naming_its_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = GOOD.format(path=tmp_path / "none.gguf").replace(*change)
    result = start(tmp_path, text)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"llm-server: config error: {tmp_path}/{expected}"), line


def test_a_missing_model_file_names_the_line_of_its_path(tmp_path: Path) -> None:
    result = start(tmp_path, GOOD.format(path=tmp_path / "none.gguf"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"llm-server: config error: {tmp_path}/models.toml line 3: [[models]] #1 ('first') "
        f"path: no such file: {tmp_path}/none.gguf"
    )


def test_a_file_that_is_not_a_gguf_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fake.gguf").write_text("not a model")
    result = start(tmp_path, GOOD.format(path="fake.gguf"))  # relative: to the models file
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "line 3: [[models]] #1 ('first') path:" in result.stderr
    assert "fake.gguf is not a readable GGUF file (no GGUF magic at its start)" in result.stderr


def test_an_unreadable_models_file_and_a_bad_budget_are_named(tmp_path: Path) -> None:
    result = start(tmp_path, GOOD, LLM_MODELS_FILE=str(tmp_path / "absent.toml"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"llm-server: config error: LLM_MODELS_FILE: cannot read {tmp_path}/absent.toml (ENOENT)"
    )
    result = start(tmp_path, GOOD, LLM_MEMORY_BUDGET="lots")
    assert result.returncode == 1
    assert "LLM_MEMORY_BUDGET: 'lots' is not a size" in result.stderr

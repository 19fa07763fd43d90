"""The tiny second model, written once per test session (tests/support/tiny_model.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny_model import write_tiny_model  # needs the `gguf` dev dependency

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.gguf")

"""LLM_SERVER_TOKEN_FILE: the service token read from a Docker/Kubernetes secret file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_server.config import MAX_SECRET_FILE_BYTES, ConfigError, load_settings

TOKEN = "file-token-" + "k" * 30


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_SERVER_TOKEN", raising=False)
    monkeypatch.delenv("LLM_SERVER_TOKEN_FILE", raising=False)
    monkeypatch.setenv("APP_ENV", "production")


def secret(directory: Path, content: str, mode: int = 0o600) -> Path:
    path = directory / "token"
    path.write_text(content)
    path.chmod(mode)
    return path


def load_from(path: Path | str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LLM_SERVER_TOKEN_FILE", str(path))
    return load_settings(_env_file=None).server_token.get_secret_value()


def refusal(path: Path | str, monkeypatch: pytest.MonkeyPatch) -> str:
    with pytest.raises(ConfigError) as caught:
        load_from(path, monkeypatch)
    message = str(caught.value)
    assert message.startswith("LLM_SERVER_TOKEN_FILE: ")
    assert TOKEN not in message
    return message


def mount_read_only(directory: Path) -> str | None:
    """Bind-mount `directory` read-only onto itself (as Docker mounts a secret); None when done,
    else why it could not (needs root)."""
    target = str(directory)
    steps = (["mount", "--bind", target, target], ["mount", "-o", "remount,bind,ro", target])
    for number, command in enumerate(steps):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            if number:
                subprocess.run(["umount", target], check=False)
            return f"{' '.join(command[:-1])}: {done.stderr.strip()}"
    return None


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A directory holding a 0644 token, then mounted read-only."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    secret(directory, TOKEN + "\n", 0o644)
    reason = mount_read_only(directory)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"read-only mounts are needed: {reason}")
        pytest.skip(f"cannot make a read-only mount: {reason}")
    yield directory
    subprocess.run(["umount", str(directory)], check=True)


def test_the_token_is_read_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_from(secret(tmp_path, TOKEN + "\n"), monkeypatch) == TOKEN


def test_a_crlf_line_end_is_stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_from(secret(tmp_path, TOKEN + "\r\n"), monkeypatch) == TOKEN


def test_the_file_may_be_named_in_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"LLM_SERVER_TOKEN_FILE={secret(tmp_path, TOKEN)}\n")
    assert load_settings(_env_file=str(dotenv)).server_token.get_secret_value() == TOKEN


def test_the_variable_and_its_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_SERVER_TOKEN", "v" * 40)
    with pytest.raises(ConfigError, match=r"^set LLM_SERVER_TOKEN or LLM_SERVER_TOKEN_FILE, not"):
        load_from(secret(tmp_path, TOKEN), monkeypatch)


def test_a_placeholder_in_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="set LLM_SERVER_TOKEN"):
        load_from(secret(tmp_path, "changeme\n"), monkeypatch)


def test_a_missing_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    assert refusal(missing, monkeypatch) == f"LLM_SERVER_TOKEN_FILE: cannot read {missing} (ENOENT)"


def test_a_directory_and_a_fifo_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert refusal(tmp_path, monkeypatch).endswith("is not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    assert refusal(fifo, monkeypatch).endswith("is not a regular file")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_writable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    message = refusal(secret(tmp_path, TOKEN, mode), monkeypatch)
    assert f"is writable by group or others (mode {mode:04o})" in message


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o444])
def test_a_world_readable_file_on_a_writable_filesystem_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    path = secret(tmp_path, TOKEN, mode)
    assert refusal(path, monkeypatch) == (
        f"LLM_SERVER_TOKEN_FILE: {path} is readable by every user (mode {mode:04o}) on a "
        "writable filesystem: chmod 600 it (640 to share it with a group), or mount it "
        "read-only as a Docker or Kubernetes secret"
    )


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_private_modes_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    assert load_from(secret(tmp_path, TOKEN, mode), monkeypatch) == TOKEN


def test_empty_and_oversized_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert refusal(secret(tmp_path, "\n"), monkeypatch).endswith("is empty")
    big = secret(tmp_path, "s" * (MAX_SECRET_FILE_BYTES + 1))
    assert "more than a secret" in refusal(big, monkeypatch)


def test_a_world_readable_file_on_a_read_only_mount_is_accepted(
    read_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_from(read_only / "token", monkeypatch) == TOKEN


def test_a_kubernetes_secret_volume_is_followed_through_its_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # key -> ..data/key, ..data -> a timestamped directory; defaultMode 0440 as deploy/k8s sets.
    stamped = tmp_path / "..2026_12_02_17_00_00.1"
    stamped.mkdir()
    secret(stamped, TOKEN + "\n", 0o440)
    (tmp_path / "..data").symlink_to(stamped.name)
    (tmp_path / "token").symlink_to("..data/token")
    assert load_from(tmp_path / "token", monkeypatch) == TOKEN


def test_an_explicit_override_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_SERVER_TOKEN_FILE", str(tmp_path / "absent"))
    settings = load_settings(server_token="o" * 40, _env_file=None)
    assert settings.server_token.get_secret_value() == "o" * 40

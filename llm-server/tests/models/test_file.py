"""`LLM_MODELS_FILE` validation: every mistake is refused with the line it is on."""

from __future__ import annotations

import pytest

from llm_server.config import ConfigError, parse_byte_size
from llm_server.models.file import parse_models_file

GOOD = """\
memory_budget = "6GiB"
idle_unload_s = 300
default = "gemma"

[[models]]
id = "gemma-3-270m"
aliases = ["gemma"]
path = "embedded"
keep_loaded = true

[[models]]
id = "tiny"
path = "tiny.gguf"
context_length = 256
slots = 2
threads = 1
chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
idle_unload_s = 5

[models.sampling]
temperature = 0.7
top_k = 20
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_models_file(text, "models.toml")
    return str(caught.value)


def replaced(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_a_good_file_is_read() -> None:
    content = parse_models_file(GOOD, "models.toml").content
    assert content.memory_budget == 6 * 2**30
    assert content.default == "gemma"
    gemma, tiny = content.models
    assert (gemma.id, gemma.aliases, gemma.path, gemma.keep_loaded) == (
        "gemma-3-270m",
        ["gemma"],
        "embedded",
        True,
    )
    assert (tiny.slots, tiny.threads, tiny.context_length, tiny.idle_unload_s) == (2, 1, 256, 5)
    assert tiny.sampling.model_dump(exclude_none=True) == {"temperature": 0.7, "top_k": 20}


def test_a_syntax_error_names_line_and_column() -> None:
    message = error_of(replaced("slots = 2", "slots = = 2"))
    assert message.startswith("models.toml line 15, column")
    assert "TOML syntax" in message


def test_an_unknown_key_names_its_line_and_entry() -> None:
    message = error_of(replaced("threads = 1", "thread = 1"))
    assert message == "models.toml line 16: [[models]] #2 ('tiny') thread: unknown key"


def test_an_unknown_top_level_key_names_its_line() -> None:
    message = error_of("budget = 3\n" + GOOD)
    assert message == "models.toml line 1: budget: unknown key"


def test_wrong_types_are_refused_not_converted() -> None:
    message = error_of(replaced("slots = 2", 'slots = "2"'))
    assert message.startswith("models.toml line 15: [[models]] #2 ('tiny') slots:")
    assert "integer" in message
    message = error_of(replaced("keep_loaded = true", 'keep_loaded = "yes"'))
    assert message.startswith("models.toml line 9: [[models]] #1 ('gemma-3-270m') keep_loaded:")
    message = error_of(replaced('aliases = ["gemma"]', 'aliases = "gemma"'))
    assert message.startswith("models.toml line 7: [[models]] #1 ('gemma-3-270m') aliases:")


def test_a_sampling_value_out_of_range_names_its_line() -> None:
    message = error_of(replaced("top_k = 20", "top_k = -1"))
    assert message.startswith("models.toml line 22: [[models]] #2 ('tiny') sampling.top_k:")
    message = error_of(replaced("top_k = 20", "top_q = 1"))
    assert message == "models.toml line 22: [[models]] #2 ('tiny') sampling.top_q: unknown key"


def test_a_missing_path_names_the_entry() -> None:
    message = error_of(replaced('path = "tiny.gguf"\n', ""))
    assert message == "models.toml line 11: [[models]] #2 ('tiny') path: missing (required)"


def test_a_duplicate_id_names_both_lines() -> None:
    message = error_of(replaced('id = "tiny"', 'id = "Gemma-3-270M"'))
    assert message == (
        "models.toml line 12: [[models]] #2 ('Gemma-3-270M') id: 'Gemma-3-270M' already "
        "names [[models]] #1 ('gemma-3-270m', line 5)"
    )


def test_an_alias_clashing_with_an_id_names_its_line() -> None:
    message = error_of(replaced('id = "tiny"', 'id = "tiny"\naliases = ["gemma-3-270m"]'))
    assert message.startswith("models.toml line 13: [[models]] #2 ('tiny') aliases:")
    assert "already names [[models]] #1" in message
    message = error_of(replaced('aliases = ["gemma"]', 'aliases = ["GEMMA-3-270m "]'))
    assert "aliases" in message  # not a valid name (space), or its own id again


def test_default_is_reserved_and_must_name_a_model() -> None:
    message = error_of(replaced('id = "tiny"', 'id = "Default"'))
    assert message.startswith("models.toml line 12: [[models]] #2 ('Default') id:")
    assert "reserved" in message
    message = error_of(replaced('default = "gemma"', 'default = "llama"'))
    assert message.startswith("models.toml line 3: default: 'llama' is no model's id or alias")


def test_names_with_spaces_or_empty_are_refused() -> None:
    assert "id:" in error_of(replaced('id = "tiny"', 'id = "tiny "'))
    assert "id:" in error_of(replaced('id = "tiny"', 'id = ""'))


def test_a_file_without_models_is_refused() -> None:
    assert error_of('memory_budget = "1GiB"\n') == "models.toml: models: missing (required)"
    assert "models" in error_of("models = []\n")


def test_the_budget_is_a_size() -> None:
    message = error_of(replaced('memory_budget = "6GiB"', 'memory_budget = "lots"'))
    assert message.startswith("models.toml line 1: memory_budget: 'lots' is not a size")
    assert parse_byte_size("512MiB") == 512 * 2**20
    assert parse_byte_size("8GB") == 8 * 10**9
    assert parse_byte_size("1.5g") == 1_500_000_000
    assert parse_byte_size("1024") == 1024
    with pytest.raises(ValueError, match="above zero"):
        parse_byte_size("0GiB")

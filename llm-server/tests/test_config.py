from __future__ import annotations

import pytest

from llm_server.config import ConfigError, load_settings


def test_production_refuses_a_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_SERVER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="LLM_SERVER_TOKEN"):
        load_settings(app_env="production", _env_file=None)


@pytest.mark.parametrize("token", ["changeme", "placeholder", "short-token"])
def test_production_refuses_a_placeholder_token(token: str) -> None:
    with pytest.raises(ConfigError, match="LLM_SERVER_TOKEN"):
        load_settings(app_env="production", server_token=token, _env_file=None)


def test_development_generates_an_ephemeral_token() -> None:
    settings = load_settings(app_env="development", server_token="", _env_file=None)
    assert len(settings.server_token.get_secret_value()) >= 32


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("LLM_SERVER_TOKEN", "s" * 40)
    monkeypatch.setenv("LLM_SERVER_PORT", "8123")
    settings = load_settings(_env_file=None)
    assert settings.server_port == 8123
    assert settings.server_token.get_secret_value() == "s" * 40


def test_an_invalid_number_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_SERVER_PORT", "eighty")
    with pytest.raises(ConfigError, match="LLM_SERVER_PORT"):
        load_settings(app_env="test", _env_file=None)


def test_tls_needs_both_files() -> None:
    with pytest.raises(ConfigError, match="LLM_TLS_KEYFILE"):
        load_settings(app_env="test", tls_certfile="cert.pem", _env_file=None)


def test_the_token_is_never_printed() -> None:
    settings = load_settings(app_env="production", server_token="s" * 40, _env_file=None)
    assert "s" * 40 not in repr(settings)

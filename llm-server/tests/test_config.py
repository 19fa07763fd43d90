from __future__ import annotations

from pathlib import Path

import pytest

from llm_server.config import ConfigError, load_settings
from tests.pki import Pair, issue, make_ca


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


def test_the_models_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MEMORY_BUDGET", "6GiB")
    monkeypatch.setenv("LLM_MODEL_LOAD_WAIT_S", "2.5")
    monkeypatch.setenv("LLM_MODELS_FILE", "models.toml")
    settings = load_settings(app_env="test", _env_file=None)
    assert (settings.memory_budget, settings.model_load_wait_s) == (6 * 2**30, 2.5)
    assert settings.models_file == Path("models.toml")
    for value in ("6 gigs", "-1", "0", "GiB"):
        monkeypatch.setenv("LLM_MEMORY_BUDGET", value)
        with pytest.raises(ConfigError, match=r"^LLM_MEMORY_BUDGET: "):
            load_settings(app_env="test", _env_file=None)
    monkeypatch.setenv("LLM_MEMORY_BUDGET", "1024")
    monkeypatch.setenv("LLM_MODEL_PATH", "model.gguf")
    with pytest.raises(ConfigError, match=r"LLM_MODEL_PATH .* or LLM_MODELS_FILE .* not both"):
        load_settings(app_env="test", _env_file=None)


def test_tls_needs_both_files() -> None:
    with pytest.raises(ConfigError, match="LLM_TLS_KEY_FILE"):
        load_settings(app_env="test", tls_cert_file="cert.pem", _env_file=None)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pair, Pair]:
    """A CA and a server certificate it signed."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "ca")
    return ca, issue(directory, "server", ca, "IP:127.0.0.1")


def test_tls_files_are_read_under_both_spellings(
    monkeypatch: pytest.MonkeyPatch, pki: tuple[Pair, Pair]
) -> None:
    ca, server = pki
    monkeypatch.setenv("LLM_TLS_CERT_FILE", str(server.cert))
    monkeypatch.setenv("LLM_TLS_KEY_FILE", str(server.key))
    monkeypatch.setenv("LLM_TLS_CLIENT_CA_FILE", str(ca.cert))
    settings = load_settings(app_env="test", _env_file=None)
    assert (settings.tls_cert_file, settings.tls_key_file) == (server.cert, server.key)
    assert settings.tls_client_ca_file == ca.cert
    for name in ("LLM_TLS_CERT_FILE", "LLM_TLS_KEY_FILE", "LLM_TLS_CLIENT_CA_FILE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("LLM_TLS_CERTFILE", str(server.cert))
    monkeypatch.setenv("LLM_TLS_KEYFILE", str(server.key))
    settings = load_settings(app_env="test", _env_file=None)
    assert (settings.tls_cert_file, settings.tls_key_file) == (server.cert, server.key)


def test_a_client_ca_needs_the_server_certificate(pki: tuple[Pair, Pair]) -> None:
    with pytest.raises(ConfigError, match=r"LLM_TLS_CLIENT_CA_FILE .*needs LLM_TLS_CERT_FILE"):
        load_settings(app_env="test", tls_client_ca_file=str(pki[0].cert), _env_file=None)


def test_a_key_readable_by_others_is_refused(tmp_path: Path, pki: tuple[Pair, Pair]) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(pki[1].key.read_bytes())
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"LLM_TLS_KEY_FILE: .* readable by every user"):
        load_settings(
            app_env="test", tls_cert_file=str(pki[1].cert), tls_key_file=str(key), _env_file=None
        )


def test_a_key_of_another_certificate_is_refused(pki: tuple[Pair, Pair]) -> None:
    ca, server = pki
    with pytest.raises(ConfigError, match="not a usable certificate and key"):
        load_settings(
            app_env="test", tls_cert_file=str(ca.cert), tls_key_file=str(server.key), _env_file=None
        )


def test_a_client_ca_that_is_no_certificate_is_refused(pki: tuple[Pair, Pair]) -> None:
    ca, server = pki
    with pytest.raises(ConfigError, match="LLM_TLS_CLIENT_CA_FILE holds no usable CA"):
        load_settings(
            app_env="test",
            tls_cert_file=str(server.cert),
            tls_key_file=str(server.key),
            tls_client_ca_file=str(ca.key),
            _env_file=None,
        )


def test_the_token_is_never_printed() -> None:
    settings = load_settings(app_env="production", server_token="s" * 40, _env_file=None)
    assert "s" * 40 not in repr(settings)

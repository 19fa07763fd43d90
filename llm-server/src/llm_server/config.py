"""Typed settings, read from the environment (and an optional `.env` in the working directory)."""

from __future__ import annotations

import errno
import os
import re
import secrets
import ssl
import stat
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "placeholder", "secret", "token"})
MIN_SECRET_LENGTH = 32


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable to set."""


class Settings(BaseSettings):
    """Every setting of llm-server. Variables are prefixed `LLM_` except `APP_ENV`."""

    model_config = SettingsConfigDict(
        env_prefix="LLM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    app_env: Annotated[AppEnv, Field(validation_alias=AliasChoices("APP_ENV", "app_env"))] = (
        AppEnv.PRODUCTION
    )
    server_host: str = "127.0.0.1"
    server_port: Annotated[int, Field(ge=0, le=65535)] = 8000
    server_token: SecretStr = SecretStr("")
    # The older spellings LLM_TLS_CERTFILE / LLM_TLS_KEYFILE are still read.
    tls_cert_file: Annotated[
        Path | None,
        Field(
            validation_alias=AliasChoices("LLM_TLS_CERT_FILE", "LLM_TLS_CERTFILE", "tls_cert_file"),
            description="PEM certificate (chain): serve HTTPS (with LLM_TLS_KEY_FILE).",
        ),
    ] = None
    tls_key_file: Annotated[
        Path | None,
        Field(
            validation_alias=AliasChoices("LLM_TLS_KEY_FILE", "LLM_TLS_KEYFILE", "tls_key_file"),
            description="PEM private key of LLM_TLS_CERT_FILE; readable by its owner only.",
        ),
    ] = None
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA certificate(s): every client must present a certificate they "
        "signed (mutual TLS); needs LLM_TLS_CERT_FILE and LLM_TLS_KEY_FILE.",
    )

    model_path: Path | None = Field(
        default=None, description="GGUF file to serve; the embedded Gemma 3 270M when unset."
    )
    model_alias: str | None = Field(
        default=None, description="Model id to advertise; the GGUF file name when unset."
    )
    n_ctx: Annotated[int, Field(ge=256)] = Field(
        default=16384, description="KV cells shared by all running sequences."
    )
    context_length: Annotated[int, Field(ge=64)] = Field(
        default=8192, description="The most tokens (prompt + completion) one sequence may use."
    )
    n_threads: Annotated[int, Field(ge=1)] = max(1, os.cpu_count() or 1)
    n_batch: Annotated[int, Field(ge=16)] = Field(
        default=2048,
        description="The most tokens one step decodes (running streams plus prompts): a burst "
        "of prompts is read in one step, so all get their first token together.",
    )
    n_ubatch: Annotated[int, Field(ge=16)] = Field(
        default=512,
        description="Tokens llama.cpp computes at once inside a step (its physical batch).",
    )
    flash_attention: bool = Field(
        default=True,
        description="llama.cpp flash attention: much faster prefill of long prompts on CPU. "
        "Off makes a sequence's logits independent of how batches are cut, at that cost.",
    )
    prefill_chunk_tokens: Annotated[int, Field(ge=1)] = Field(
        default=32,
        description="Prompt tokens read per step while other streams decode: small enough "
        "that a long prompt never stalls them.",
    )
    batch_multiple: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4,
        description="A step's rows with logits are padded to a multiple of this with guessed "
        "next tokens (speculative decoding by prompt lookup, verified by the sampler): "
        "llama.cpp's CPU kernels run the output layer on 4-row tiles, so a ragged number "
        "of rows costs about as much as the next multiple. 1 turns guessing off.",
    )
    swa_full: bool = Field(
        default=True,
        description="Keep full-size caches for sliding-window layers (Gemma 3), so that long "
        "cached prefixes can be reused; off saves memory.",
    )
    prefix_cache_bytes: Annotated[int, Field(ge=0)] = Field(
        default=1 << 30,
        description="Host memory (bytes) for the KV states of sequences evicted from the "
        "context, so that a resent history (a conversation's next turn) is restored instead of "
        "read again; least recently used states go first. 0 turns it off.",
    )

    models_file: Path | None = Field(
        default=None,
        description="TOML file listing several models (README, Several models); unset: one "
        "model, LLM_MODEL_PATH or the embedded one.",
    )
    memory_budget: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="Memory (e.g. 6GiB) the models of LLM_MODELS_FILE may hold together; the "
        "least recently used idle model is unloaded to make room. Overrides the file's.",
    )
    model_load_wait_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="How long a request for a model that is loading waits before a 503.",
    )

    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_000_000
    max_tokens_limit: Annotated[int, Field(ge=1)] = 4096
    default_max_tokens: Annotated[int, Field(ge=1)] = 256
    max_n: Annotated[int, Field(ge=1)] = 4
    max_queue: Annotated[int, Field(ge=0)] = 64
    max_running: Annotated[int, Field(ge=1)] = 16
    request_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    drain_timeout_s: Annotated[float, Field(ge=0)] = 10.0
    log_level: str = "info"

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _parse_budget(cls, value: object) -> object:
        return parse_byte_size(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        token = self.server_token.get_secret_value()
        weak = token.lower() in PLACEHOLDER_SECRETS or len(token) < MIN_SECRET_LENGTH
        if weak and self.app_env is AppEnv.PRODUCTION:
            raise ValueError(
                "set LLM_SERVER_TOKEN (a random string of at least "
                f"{MIN_SECRET_LENGTH} characters, shared with the gateway)"
            )
        if weak:
            self.server_token = SecretStr(secrets.token_urlsafe(32))
        if self.models_file is not None and self.model_path is not None:
            raise ValueError(
                "set LLM_MODEL_PATH (one model) or LLM_MODELS_FILE (several models), not both"
            )
        check_tls_files(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)
        return self


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}b": 1000**i for i, p in enumerate("kmgt", start=1)},
    **{p: 1000**i for i, p in enumerate("kmgt", start=1)},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgt", start=1)},
}


def parse_byte_size(text: str) -> int:
    """Bytes from `6GiB`, `512MiB`, `8GB`, `1.5G` or a plain number of bytes (units are
    case-insensitive; KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB and K/M/G/T of 1000)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"{text!r} is not a size: write bytes or a number with a unit (6GiB, 512MiB, 8GB)"
        )
    size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"{text!r} is not a size above zero")
    return size


def check_tls_files(cert: Path | None, key: Path | None, client_ca: Path | None) -> None:
    """Fail at start, in one line naming the variable, rather than with uvicorn's stack trace:
    both files or neither, a key readable by its owner only (the rule of secret files), a usable
    certificate and key, and a client CA only with them."""
    if (cert is None) != (key is None):
        raise ValueError("set both LLM_TLS_CERT_FILE and LLM_TLS_KEY_FILE, or neither")
    if cert is None or key is None:
        if client_ca is not None:
            raise ValueError(
                "LLM_TLS_CLIENT_CA_FILE (mutual TLS) needs LLM_TLS_CERT_FILE and LLM_TLS_KEY_FILE"
            )
        return
    # A private key is a secret: the same permission rule as NAME_FILE (raises ConfigError).
    read_secret_file("LLM_TLS_KEY_FILE", str(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"LLM_TLS_CERT_FILE and LLM_TLS_KEY_FILE are not a usable certificate and key ({exc})"
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"LLM_TLS_CLIENT_CA_FILE holds no usable CA certificate: {client_ca} ({exc})"
            ) from None


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning any validation problem into one readable `ConfigError`."""
    from pydantic import ValidationError

    try:
        return Settings(**{**secrets_from_files(overrides), **overrides})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        variable = f"LLM_{where.upper()}" if where and where != "APP_ENV" else where
        raise ConfigError(f"{variable}: {message}" if where else message) from None


# Secrets that may be given as NAME_FILE instead (Docker and Kubernetes secrets, a Vault agent's
# rendered file): variable -> Settings field.
SECRET_FILE_VARIABLES = {"LLM_SERVER_TOKEN": "server_token"}
MAX_SECRET_FILE_BYTES = 64 * 1024


def secrets_from_files(
    overrides: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read every `NAME_FILE` of SECRET_FILE_VARIABLES from the environment (or `.env`, unless
    `overrides` sets `_env_file`) into Settings fields. `NAME` and `NAME_FILE` both set is an
    error; a field given in `overrides` wins and its file is not read."""
    from dotenv import dotenv_values

    env_file = overrides.get("_env_file", ".env")
    from_file = dotenv_values(env_file) if isinstance(env_file, str | Path) else {}
    env = {**{k: v for k, v in from_file.items() if v is not None}, **(environ or os.environ)}
    fields: dict[str, str] = {}
    for name, field in SECRET_FILE_VARIABLES.items():
        path = env.get(f"{name}_FILE", "").strip()
        if not path or field in overrides:
            continue
        if env.get(name, "").strip():
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        fields[field] = read_secret_file(f"{name}_FILE", path)
    return fields


def read_secret_file(variable: str, path: str) -> str:
    """The secret in the file at `path` without its trailing newline. Refused, with a message
    naming `variable` and never the contents: not a regular file, writable by group or others,
    readable by every user unless on a read-only mount (as Docker, Compose and Kubernetes mount
    secrets: whoever can see it was given it), empty, or larger than a secret."""
    try:
        # O_NONBLOCK: a FIFO at that path must not hang the start; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, str(exc))
        raise ConfigError(f"{variable}: cannot read {path} ({reason})") from None
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        chmod = "chmod 600 it (640 to share it with a group)"
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{variable}: {path} is not a regular file")
        if mode & 0o022:
            raise ConfigError(
                f"{variable}: {path} is writable by group or others (mode {mode:04o}): {chmod}"
            )
        if mode & 0o004 and not os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            raise ConfigError(
                f"{variable}: {path} is readable by every user (mode {mode:04o}) on a writable "
                f"filesystem: {chmod}, or mount it read-only as a Docker or Kubernetes secret"
            )
        if info.st_size > MAX_SECRET_FILE_BYTES:
            raise ConfigError(
                f"{variable}: {path} is {info.st_size} bytes, more than a secret "
                f"(at most {MAX_SECRET_FILE_BYTES})"
            )
        raw = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path} is not UTF-8 text") from None
    value = value.removesuffix("\n").removesuffix("\r") if value.endswith("\n") else value
    if not value.strip():
        raise ConfigError(f"{variable}: {path} is empty")
    return value

"""`LLM_MODELS_FILE`: the TOML file listing the models one llm-server hosts, validated at start.

Every error names the file's line: tomllib's syntax errors carry it; a schema error (pydantic)
is located by finding the `[[models]]` entry, sub-table or key it is about in the text.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_server.config import ConfigError, parse_byte_size

# A model's public name: what clients send as `model` (ids like `Qwen/Qwen2.5-7B-Instruct`).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
RESERVED_NAME = "default"  # `model: "default"` means the file's default model


def name_key(name: str) -> str:
    """How names are compared: case and surrounding spaces do not matter."""
    return name.strip().casefold()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SamplingSection(_Section):
    """Defaults a request gets for the sampling fields it omits (bounds as the API's)."""

    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_k: Annotated[int, Field(ge=0, le=1000)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class ModelSection(_Section):
    """One `[[models]]` entry."""

    id: Name
    aliases: Annotated[list[Name], Field(max_length=16)] = []
    path: Annotated[str, Field(min_length=1)]  # "embedded", or a GGUF (relative: to the file)
    context_length: Annotated[int, Field(ge=64)] | None = None
    kv_cells: Annotated[int, Field(ge=256)] | None = None
    slots: Annotated[int, Field(ge=1, le=256)] | None = None
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None
    chat_template: Annotated[str, Field(min_length=1, max_length=100_000)] | None = None
    sampling: SamplingSection = SamplingSection()
    keep_loaded: bool = False
    idle_unload_s: Annotated[float, Field(gt=0)] | None = None


class ModelsFile(_Section):
    """The whole file."""

    memory_budget: Annotated[int, Field(gt=0)] | None = None
    idle_unload_s: Annotated[float, Field(gt=0)] = 600.0
    default: str | None = None
    models: Annotated[list[ModelSection], Field(min_length=1, max_length=64)]

    @field_validator("memory_budget", mode="before")
    @classmethod
    def _budget(cls, value: object) -> object:
        return parse_byte_size(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ParsedModelsFile:
    """The validated file and where its entries and keys are, for later errors."""

    content: ModelsFile
    locator: Locator


def parse_models_file(text: str, source: str) -> ParsedModelsFile:
    """Validate the file's text; `ConfigError` naming `source` and the line otherwise."""
    locator = Locator(text, source)
    try:
        locator.data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(locator.syntax_error(str(exc))) from None
    try:
        content = ModelsFile.model_validate(locator.data)
    except ValidationError as exc:
        raise ConfigError(locator.schema_error(exc)) from None
    check_names(content, locator)
    return ParsedModelsFile(content, locator)


def check_names(content: ModelsFile, locator: Locator) -> None:
    """Ids and aliases name one model each (compared without case), none is `default`, and
    `default` names one of them."""
    owners: dict[str, int] = {}
    for index, model in enumerate(content.models):
        for key, name in [("id", model.id)] + [("aliases", a) for a in model.aliases]:
            folded = name_key(name)
            if folded == RESERVED_NAME:
                raise ConfigError(
                    locator.at(
                        ("models", index, key),
                        f"'{name}' is reserved (it means the default model)",
                    )
                )
            if (folded in owners and owners[folded] != index) or (
                key == "aliases" and folded == name_key(model.id)
            ):
                first = owners.get(folded, index)
                raise ConfigError(
                    locator.at(
                        ("models", index, key),
                        f"'{name}' already names [[models]] #{first + 1} "
                        f"('{content.models[first].id}', line {locator.entry_line(first)})",
                    )
                )
            owners[folded] = index
    if content.default is not None and name_key(content.default) not in owners:
        known = ", ".join(m.id for m in content.models)
        raise ConfigError(
            locator.at(("default",), f"'{content.default}' is no model's id or alias ({known})")
        )


_ENTRY = re.compile(r"^\s*\[\[\s*models\s*\]\]")
_TABLE = re.compile(r"^\s*\[")
_SYNTAX_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class Locator:
    """Finds the line of an entry or key in the file's text (1-based)."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.data: dict[str, Any] = {}  # the parsed file, once it parses: names its entries
        self._lines = text.splitlines()
        self._entries = [i for i, line in enumerate(self._lines) if _ENTRY.match(line)]

    def syntax_error(self, message: str) -> str:
        match = _SYNTAX_LINE.search(message)
        if match is None:
            return f"{self.source}: {message}"
        where = f"line {match.group(1)}, column {match.group(2)}"
        return f"{self.source} {where}: {message[: match.start()]} (TOML syntax)"

    def schema_error(self, exc: ValidationError) -> str:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "missing (required)"
        return self.at(loc, message)

    def entry_line(self, index: int) -> int | None:
        return self._entries[index] + 1 if 0 <= index < len(self._entries) else None

    def at(self, loc: tuple[Any, ...], message: str) -> str:
        """`message` prefixed with the file, the line and what `loc` names."""
        line = self._line_of(loc)
        where = f" line {line}" if line is not None else ""
        what = _describe(loc, self.data)
        return f"{self.source}{where}: {what}: {message}"

    def _line_of(self, loc: tuple[Any, ...]) -> int | None:
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            index = loc[1]
            if index >= len(self._entries):
                return None
            start = self._entries[index]
            end = self._entries[index + 1] if index + 1 < len(self._entries) else len(self._lines)
            keys = [k for k in loc[2:] if isinstance(k, str)]
            if keys[:1] == ["sampling"] and len(keys) > 1:
                table = self._find(r"\[\s*models\s*\.\s*sampling\s*\]", start, end)
                if table is not None:
                    return self._key_line(keys[1], table, end) or table + 1
            found = self._key_line(keys[0], start, end) if keys else None
            return found or start + 1
        first_table = next(
            (i for i, line in enumerate(self._lines) if _TABLE.match(line)), len(self._lines)
        )
        key = str(loc[0]) if loc else ""
        return self._key_line(key, 0, first_table) if key else None

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        found = self._find(rf"[\"']?{re.escape(key)}[\"']?\s*=", start, end)
        return None if found is None else found + 1

    def _find(self, pattern: str, start: int, end: int) -> int | None:
        expression = re.compile(rf"^\s*{pattern}")
        return next((i for i in range(start, end) if expression.match(self._lines[i])), None)


def _describe(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`[[models]] #2 ('tiny') slots` or `memory_budget` for a pydantic location."""
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        entry = f"[[models]] #{loc[1] + 1}"
        models = data.get("models")
        if isinstance(models, list) and loc[1] < len(models) and isinstance(models[loc[1]], dict):
            ident = models[loc[1]].get("id")
            entry += f" ('{ident}')" if isinstance(ident, str) else ""
        rest = ".".join(str(part) for part in loc[2:])
        return f"{entry} {rest}".strip()
    return ".".join(str(part) for part in loc) or "the file"

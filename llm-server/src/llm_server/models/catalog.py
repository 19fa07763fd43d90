"""The models one llm-server hosts, as specs the registry loads and unloads: one model from the
settings (no models file: today's single model), or every entry of `LLM_MODELS_FILE`."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llm_server.config import ConfigError, Settings
from llm_server.engine.embedded import embedded_model_path
from llm_server.models.file import ModelSection, ParsedModelsFile, name_key, parse_models_file
from llm_server.models.gguf import GGUFError, GGUFInfo, read_gguf_info

Kind = Literal["base", "chat"]
EMBEDDED = "embedded"


@dataclass(frozen=True)
class ModelSpec:
    """One model: its names, the settings its engine is built with, and how it is kept."""

    id: str  # "" for the single model of the settings: its engine names it once loaded
    settings: Settings
    aliases: tuple[str, ...] = ()
    chat_template: str | None = None
    sampling: dict[str, float] = field(default_factory=dict)  # overrides of the API defaults
    keep_loaded: bool = True
    idle_unload_s: float | None = None
    memory_bytes: int = 0  # estimate: weights + full KV cache (0: unknown)
    kind: Kind | None = None  # known from the GGUF header before loading
    context_length: int | None = None  # known before loading

    def names(self) -> set[str]:
        return {name_key(n) for n in (self.id, *self.aliases) if n}


@dataclass(frozen=True)
class Catalog:
    """Every model and which one `default` means; `memory_budget` None: no limit."""

    models: tuple[ModelSpec, ...]
    default: int = 0  # index into models
    memory_budget: int | None = None
    from_file: bool = False


def load_catalog(settings: Settings) -> Catalog:
    """The catalog of `settings`: `ConfigError` (naming the file's line) if it is unusable."""
    if settings.models_file is None:
        return Catalog((ModelSpec(id=settings.model_alias or "", settings=settings),))
    path = settings.models_file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, str(exc))
        raise ConfigError(f"LLM_MODELS_FILE: cannot read {path} ({reason})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"LLM_MODELS_FILE: {path} is not UTF-8 text") from None
    return catalog_from_file(parse_models_file(text, str(path)), settings, path.parent)


def catalog_from_file(parsed: ParsedModelsFile, settings: Settings, base: Path) -> Catalog:
    """Specs of every entry, their GGUF files checked and measured; the budget checked."""
    content = parsed.content
    specs = tuple(
        _spec(parsed, index, section, settings, base)
        for index, section in enumerate(content.models)
    )
    default = 0
    if content.default is not None:
        wanted = name_key(content.default)
        default = next(i for i, spec in enumerate(specs) if wanted in spec.names())
    budget = settings.memory_budget or content.memory_budget
    _check_budget(parsed, specs, budget)
    return Catalog(specs, default, budget, from_file=True)


def _spec(
    parsed: ParsedModelsFile, index: int, section: ModelSection, settings: Settings, base: Path
) -> ModelSpec:
    path = _model_path(parsed, index, section, base)
    try:
        info = read_gguf_info(path)
    except GGUFError as exc:
        raise ConfigError(parsed.locator.at(("models", index, "path"), str(exc))) from None
    own = settings.model_copy(
        update={
            "model_path": path,
            "model_alias": section.id,
            "context_length": section.context_length or settings.context_length,
            "n_ctx": section.kv_cells or settings.n_ctx,
            "max_running": section.slots or settings.max_running,
            "n_threads": section.threads or settings.n_threads,
            "models_file": None,
        }
    )
    has_template = section.chat_template is not None or info.has_chat_template
    return ModelSpec(
        id=section.id,
        settings=own,
        aliases=tuple(section.aliases),
        chat_template=section.chat_template,
        sampling=section.sampling.model_dump(exclude_none=True),
        keep_loaded=section.keep_loaded,
        idle_unload_s=section.idle_unload_s or parsed.content.idle_unload_s,
        memory_bytes=info.memory_bytes(own.n_ctx),
        kind="chat" if has_template else "base",
        context_length=_context_length(own, info),
    )


def _model_path(parsed: ParsedModelsFile, index: int, section: ModelSection, base: Path) -> Path:
    if section.path == EMBEDDED:
        return embedded_model_path()
    path = (base / section.path).expanduser()
    if not path.is_file():
        raise ConfigError(parsed.locator.at(("models", index, "path"), f"no such file: {path}"))
    return path


def _context_length(settings: Settings, info: GGUFInfo) -> int:
    """As the engine computes it once loaded: capped by the training context and the cache."""
    bounds = [settings.context_length, settings.n_ctx]
    if info.n_ctx_train:
        bounds.append(info.n_ctx_train)
    return min(bounds)


def _check_budget(
    parsed: ParsedModelsFile, specs: tuple[ModelSpec, ...], budget: int | None
) -> None:
    """Every model fits the budget alone, and the models kept loaded fit it together."""
    if budget is None:
        return
    where = ("memory_budget",)
    for index, spec in enumerate(specs):
        if spec.memory_bytes > budget:
            raise ConfigError(
                parsed.locator.at(
                    ("models", index, "path"),
                    f"the model needs about {mib(spec.memory_bytes)} (its file and a KV cache "
                    f"of {spec.settings.n_ctx} cells), more than the memory budget "
                    f"{mib(budget)}",
                )
            )
    kept = sum(spec.memory_bytes for spec in specs if spec.keep_loaded)
    if kept > budget:
        raise ConfigError(
            parsed.locator.at(
                where,
                f"the models with keep_loaded need about {mib(kept)} together, more than the "
                f"memory budget {mib(budget)}",
            )
        )


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"

"""The models one llm-server hosts: the models file, their catalog, and their registry."""

from llm_server.models.catalog import Catalog, ModelSpec, load_catalog
from llm_server.models.registry import (
    EngineFactory,
    ModelEntry,
    ModelLease,
    ModelRegistry,
    ModelStatus,
)

__all__ = [
    "Catalog",
    "EngineFactory",
    "ModelEntry",
    "ModelLease",
    "ModelRegistry",
    "ModelSpec",
    "ModelStatus",
    "load_catalog",
]

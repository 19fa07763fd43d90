"""The inference engine behind the HTTP layer: an interface and its llama.cpp implementation."""

from llm_server.engine.base import Engine, EngineLoad, Generation
from llm_server.engine.prefix_cache import RESTORE_BUCKETS, PrefixCacheStats

__all__ = ["RESTORE_BUCKETS", "Engine", "EngineLoad", "Generation", "PrefixCacheStats"]

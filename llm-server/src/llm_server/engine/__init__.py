"""The inference engine behind the HTTP layer: an interface and its llama.cpp implementation."""

from llm_server.engine.base import Engine, EngineLoad, Generation

__all__ = ["Engine", "EngineLoad", "Generation"]

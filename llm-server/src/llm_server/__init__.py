"""llm-server: llama.cpp behind an OpenAI-compatible HTTP API, reachable only by the gateway."""

__version__ = "0.1.0"

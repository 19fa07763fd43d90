"""What the engine raises. It knows nothing of HTTP: `llm_server.errors` maps each of these
to a status and the error envelope, in one place."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine reports; the message is written for the client."""


class EngineUnavailableError(EngineError):
    """The engine cannot take or finish work now (loading, shutting down, a failed step)."""


class EngineBusyError(EngineError):
    """The waiting queue is full."""


class InvalidTextError(EngineError):
    """A text the tokenizer cannot read (a lone UTF-16 surrogate)."""


class ChatTemplateError(EngineError, ValueError):
    """The chat cannot be written with the model's template (roles out of order, ...)."""


class GrammarError(EngineError, ValueError):
    """A JSON schema or grammar that cannot constrain generation; the message says why."""


class GenerationTimeoutError(EngineError):
    """A generation ran past the request timeout."""

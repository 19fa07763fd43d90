"""Grammars that force JSON: any object, or one matching a client's schema. A schema is
bounded first (`limits`), converted in a worker process (`compiler`, `worker`) and then
compiled once by the backend, so that everything it refuses is the client's error before
the request is queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from llm_server.engine.errors import GrammarError
from llm_server.engine.grammar.compiler import GrammarCompiler


class JsonGrammars:
    """What `Engine.json_grammar` answers with; `check` compiles a grammar in the backend
    (blocking) and raises `GrammarError` if it is refused."""

    def __init__(
        self, check: Callable[[str], None], compiler: GrammarCompiler | None = None
    ) -> None:
        self._check = check
        self._compiler = compiler or GrammarCompiler()

    async def grammar(self, schema: dict[str, Any] | None) -> str:
        """GBNF for any JSON object (`schema` None) or for `schema`; `GrammarError` if the
        schema cannot be used, with a message for the client."""
        if schema is None:
            from llama_cpp.llama_grammar import JSON_GBNF

            return str(JSON_GBNF)
        grammar = await self._compiler.json_schema(schema)
        try:
            await asyncio.to_thread(self._check, grammar)
        except GrammarError:
            # An unsatisfiable rule or a left recursion: the schema's fault, said now rather
            # than as a failed generation.
            raise GrammarError(
                "the schema cannot be used: llama.cpp refused the grammar made from it"
            ) from None
        return grammar

    async def close(self) -> None:
        """Stop the worker process (started again on the next schema)."""
        await self._compiler.close()

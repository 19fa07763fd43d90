"""JSON schema → grammar in the worker process: bounded, timed, and contained."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from llm_server.engine.errors import GrammarError
from llm_server.engine.grammar.compiler import GrammarCompiler


@pytest.fixture
async def compiler() -> AsyncIterator[GrammarCompiler]:
    compiler = GrammarCompiler()
    yield compiler
    await compiler.close()


async def test_a_schema_becomes_a_grammar(compiler: GrammarCompiler) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    grammar = await compiler.json_schema(schema)
    assert "root ::=" in grammar
    assert '"true"' in grammar or "true" in grammar


async def test_a_repetition_bomb_is_refused_at_once(compiler: GrammarCompiler) -> None:
    started = time.perf_counter()
    with pytest.raises(GrammarError, match=r"minItems .* is 200000000"):
        await compiler.json_schema({"type": "array", "minItems": 200_000_000})
    assert time.perf_counter() - started < 0.5


async def test_what_the_converter_refuses_is_a_conversion_error(
    compiler: GrammarCompiler,
) -> None:
    with pytest.raises(GrammarError, match="cannot be used"):
        await compiler.json_schema({"$ref": "https://example.com/schema.json"})
    # The worker survives a refusal and converts the next schema.
    assert "root ::=" in await compiler.json_schema({"type": "integer"})


async def test_a_bomb_past_the_limits_costs_only_the_worker(compiler: GrammarCompiler) -> None:
    """Even a schema that skipped the checks cannot hold the server: the worker runs out of
    memory or time, is replaced, and the next schema converts."""
    bomb = {"type": "array", "items": {"type": "integer"}, "minItems": 200_000_000}
    started = time.perf_counter()
    with pytest.raises(GrammarError, match=r"memory|longer than"):
        await compiler._convert(bomb)
    assert time.perf_counter() - started < 20
    assert "root ::=" in await compiler.json_schema({"type": "string"})


async def test_a_slow_conversion_is_cut_and_the_worker_replaced() -> None:
    compiler = GrammarCompiler(timeout_s=0)
    try:
        with pytest.raises(GrammarError, match="longer than"):
            await compiler.json_schema({"type": "object", "properties": {"a": {"type": "string"}}})
        assert compiler._process is None
    finally:
        await compiler.close()

"""Bounds on JSON schemas, checked before the converter expands them."""

from __future__ import annotations

from typing import Any

import pytest

from llm_server.engine.grammar.limits import (
    MAX_REPETITION,
    MAX_SCHEMA_DEPTH,
    SchemaLimitError,
    check_pattern,
    check_schema,
)


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array", "items": {"type": "integer"}, "minItems": 200_000_000}, "minItems"),
        ({"type": "array", "maxItems": 10**9}, "maxItems"),
        ({"type": "string", "minLength": 10**8}, "minLength"),
        ({"type": "string", "maxLength": -1}, "maxLength"),
        ({"type": "string", "maxLength": "9"}, "maxLength"),
        ({"type": "object", "minProperties": 10**6}, "minProperties"),
        ({"type": "string", "pattern": "a{100000}"}, "repeats 100000"),
        ({"type": "string", "pattern": "((a{1000}){1000}){1000}"}, "written out"),
        ({"type": "string", "pattern": "a" * 5000}, "characters"),
        ({"enum": list(range(5000))}, "enum"),
        ({"enum": []}, "empty"),
        ({"anyOf": []}, "empty"),
        ({"oneOf": []}, "empty"),
        ({"type": []}, "empty"),
        ({"type": "integer", "minimum": 1e300}, "minimum"),
        ({"type": "integer", "maximum": float("inf")}, "finite"),
        ({"type": "object", "properties": {"a": {"type": "string", "maxLength": 10**6}}}, "/a"),
        ({"description": "x" * 40_000}, "bytes"),
        (nested(MAX_SCHEMA_DEPTH), "deeper"),
    ],
)
def test_bombs_and_empty_choices_are_refused(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaLimitError, match=message):
        check_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]},
        {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 10},
        {"type": "string", "pattern": r"^\d{3}-\d{4}$"},
        {"type": "string", "pattern": r"([a-z]{1,63}\.){1,8}[a-z]{2,6}"},
        {"type": "string", "minLength": MAX_REPETITION},
        # Keyword-like names and enum values are data, not keywords.
        {"type": "object", "properties": {"minItems": {"type": "string"}, "enum": {}}},
        {"enum": [{"maxLength": 10**9}, "a"]},
        {"type": "object", "required": []},
        nested(MAX_SCHEMA_DEPTH // 2 - 1),
    ],
)
def test_ordinary_schemas_pass(schema: dict[str, Any]) -> None:
    check_schema(schema)


def test_a_literal_brace_is_not_a_quantifier() -> None:
    check_pattern("a{b}c{,}")

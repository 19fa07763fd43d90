"""Bounds on a client's JSON schema, checked before anything expands it into a grammar.

llama-cpp-python's converter writes a repetition count out as that many copies of a rule
(`minItems: 200000000` is gigabytes of grammar text), recurses once per nesting level and
copies a regular expression's quantified groups. Every count, the nesting depth and the size
are bounded here, so that conversion is linear in a schema of bounded size.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_SCHEMA_BYTES = 32_768
MAX_SCHEMA_DEPTH = 32  # JSON nesting of the schema document (an object property takes 2)
MAX_REPETITION = 4096  # any minItems, maxLength, ... and any {n,m} in a pattern
MAX_ENUM_VALUES = 1000
MAX_PATTERN_CHARS = 1000
MAX_PATTERN_EXPANSION = 50_000  # atoms of a pattern once its quantifiers are written out
MAX_NUMBER_BOUND = 2**53  # minimum, maximum, ...: integer ranges become digit-by-digit rules

REPETITION_KEYWORDS = (
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
)
NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
NONEMPTY_KEYWORDS = ("enum", "anyOf", "oneOf", "type")  # empty, nothing can match
NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
DATA_KEYWORDS = ("enum", "const", "default", "examples")  # values, not schemas


class SchemaLimitError(ValueError):
    """The schema is over one of this server's bounds; the message names the bound."""


def check_schema(schema: Any) -> None:
    """Raise `SchemaLimitError` naming the first bound the schema is over."""
    _walk(schema, "", 0)
    size = len(json.dumps(schema, separators=(",", ":")).encode())
    if size > MAX_SCHEMA_BYTES:
        raise SchemaLimitError(
            f"the schema is {size} bytes; this server accepts at most {MAX_SCHEMA_BYTES}"
        )


def _walk(node: Any, path: str, depth: int, *, data: bool = False) -> None:
    """Visit every node for depth; keywords only where `node` is a schema (not inside an
    enum's values, and not a property's name)."""
    if depth > MAX_SCHEMA_DEPTH:
        raise SchemaLimitError(
            f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels (at {path or '/'})"
        )
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, f"{path}/{index}", depth + 1, data=data)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}/{key}"
        if data:
            _walk(value, where, depth + 1, data=True)
            continue
        if key in REPETITION_KEYWORDS:
            _check_count(key, value, where)
        elif key in NUMBER_KEYWORDS:
            _check_number(key, value, where)
        elif key == "pattern" and isinstance(value, str):
            check_pattern(value, where)
        if key in NONEMPTY_KEYWORDS and isinstance(value, list):
            _check_list(key, value, where)
        if key in NAME_MAPS and isinstance(value, dict):
            for name, schema in value.items():
                _walk(schema, f"{where}/{name}", depth + 2)
        else:
            _walk(value, where, depth + 1, data=key in DATA_KEYWORDS)


def _check_count(key: str, value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaLimitError(f"{key} at {where} must be a non-negative integer")
    if value > MAX_REPETITION:
        raise SchemaLimitError(
            f"{key} at {where} is {value}; this server allows at most {MAX_REPETITION}"
        )


def _check_number(key: str, value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaLimitError(f"{key} at {where} must be a finite number")
    if abs(value) > MAX_NUMBER_BOUND:
        raise SchemaLimitError(
            f"{key} at {where} is {value}; this server allows at most ±{MAX_NUMBER_BOUND}"
        )


def _check_list(key: str, value: list[Any], where: str) -> None:
    if not value:
        raise SchemaLimitError(f"{key} at {where} is empty: nothing can match it")
    if key == "enum" and len(value) > MAX_ENUM_VALUES:
        raise SchemaLimitError(
            f"enum at {where} has {len(value)} values; this server allows at most {MAX_ENUM_VALUES}"
        )


def check_pattern(pattern: str, where: str = "pattern") -> None:
    """Bound a regular expression's length, each quantifier and its written-out size."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise SchemaLimitError(
            f"the pattern at {where} is {len(pattern)} characters; this server allows at most "
            f"{MAX_PATTERN_CHARS}"
        )
    size, _ = _PatternSize(pattern, where).sequence(0)
    if size > MAX_PATTERN_EXPANSION:
        raise SchemaLimitError(
            f"the pattern at {where} repeats to {size} items once its quantifiers are written "
            f"out; this server allows at most {MAX_PATTERN_EXPANSION}"
        )


class _PatternSize:
    """An upper bound on the items a regular expression becomes with every `{n,m}` written
    out: a quantified atom counts its size times its largest count, a group the sum of its
    alternatives. Not a validator: the converter reports syntax it does not support."""

    def __init__(self, pattern: str, where: str) -> None:
        self._pattern = pattern
        self._where = where

    def sequence(self, i: int) -> tuple[int, int]:
        """Size of the alternatives from `i` to the closing `)` or the end; and that index."""
        pattern, total = self._pattern, 0
        while i < len(pattern) and pattern[i] != ")":
            char = pattern[i]
            if char == "|":
                i += 1
                continue
            if char == "(":
                size, i = self.sequence(i + 1)
                i += 1  # past ")"
            elif char == "[":
                size, i = 1, self._class_end(i)
            elif char == "\\":
                size, i = 1, i + 2
            else:
                size, i = 1, i + 1
            count, i = self._quantifier(i)
            total += max(size, 1) * count
        return total, i

    def _class_end(self, i: int) -> int:
        pattern = self._pattern
        i += 1
        if i < len(pattern) and pattern[i] == "^":
            i += 1
        if i < len(pattern) and pattern[i] == "]":
            i += 1
        while i < len(pattern) and pattern[i] != "]":
            i += 2 if pattern[i] == "\\" else 1
        return i + 1

    def _quantifier(self, i: int) -> tuple[int, int]:
        pattern = self._pattern
        if i < len(pattern) and pattern[i] in "*+?":
            return 1, i + 1 + (i + 1 < len(pattern) and pattern[i + 1] == "?")
        if i >= len(pattern) or pattern[i] != "{":
            return 1, i
        end = pattern.find("}", i)
        body = pattern[i + 1 : end] if end > 0 else ""
        parts = body.split(",")
        if end < 0 or len(parts) > 2 or not all(p.strip().isdigit() or p == "" for p in parts):
            return 1, i + 1  # a literal "{", as in most regex dialects
        counts = [int(p) for p in parts if p.strip()]
        largest = max(counts, default=0)
        if largest > MAX_REPETITION:
            raise SchemaLimitError(
                f"the pattern at {self._where} repeats {largest} times ({{{body}}}); this server "
                f"allows at most {MAX_REPETITION}"
            )
        return max(largest, 1), end + 1

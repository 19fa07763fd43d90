"""The routes a service declares in its OpenAPI document, as concrete request targets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

METHODS = ("get", "post", "put", "patch", "delete")
PLACEHOLDER = re.compile(r"\{[^}]+\}")
# An id nobody has: path parameters are filled with it.
UNKNOWN_ID = "a0a0a0a0a0a0a0a0a0a0a0a0"


@dataclass(frozen=True)
class Route:
    method: str  # upper case
    template: str  # as declared, e.g. /api/conversations/{id}
    path: str  # placeholders filled

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def load(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.get(url, headers=headers, timeout=30)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def routes(document: dict[str, Any]) -> list[Route]:
    """Every (method, path) of the document."""
    out = []
    for template, item in sorted(document.get("paths", {}).items()):
        for method in METHODS:
            if method in item:
                out.append(Route(method.upper(), template, PLACEHOLDER.sub(UNKNOWN_ID, template)))
    return out


def protected(base_url: str, document: dict[str, Any]) -> list[Route]:
    """The routes that answer 401 to a request without credentials (checked, not assumed)."""
    out = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for route in routes(document):
            body: dict[str, Any] | None = {} if route.method in ("POST", "PUT", "PATCH") else None
            response = client.request(route.method, route.path, json=body)
            if response.status_code == 401:
                out.append(route)
    return out

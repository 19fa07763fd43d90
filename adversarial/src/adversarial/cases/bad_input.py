"""Bad input: property-based on every route of both OpenAPI documents (schemathesis), and the
hand-picked inputs the issue found, each with the status it must get."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from adversarial import rawhttp
from adversarial.fuzz import FuzzReport, schemathesis_run
from adversarial.registry import Context, case
from adversarial.stack import Stack, two_servers

_gateway_reports: dict[str, list[tuple[str, FuzzReport]]] = {}


def gateway_fuzz(ctx: Context) -> list[tuple[str, FuzzReport]]:
    """schemathesis over the gateway's document, once per stack: as a user (every route but
    the admin ones, with limits lifted) and as an admin (the admin routes)."""
    stack = ctx.stack
    if stack.gw in _gateway_reports:
        return _gateway_reports[stack.gw]
    user = stack.account("fuzz-user")
    stack.admin("set-limits", "--email", user.email, "--requests-per-minute", "0",
                "--tokens-per-day", "0", "--concurrent-streams", "0")  # fmt: skip
    admin = stack.account("admin", role="admin")
    runs = [
        ("user", user.session, ["--exclude-path-regex", "^/api/admin"], 30),
        ("admin", admin.session, ["--include-path-regex", "^/api/admin"], 15),
    ]
    reports = []
    for label, token, selection, seconds in runs:
        report = schemathesis_run(
            f"{stack.gw}/docs/json",
            stack.gw,
            {"Authorization": f"Bearer {token}"},
            stack.workdir / f"schemathesis-gateway-{label}",
            selection,
            max_examples=8,
            max_time=seconds,
        )
        ctx.tally.bad_inputs += report.cases
        ctx.tally.client_error_5xx += report.server_errors
        ctx.tally.notes += [f"schemathesis ({label}) {e}" for e in report.tool_errors]
        reports.append((label, report))
    # The admin run may have changed the sign-up policy (PATCH /api/admin/settings with a valid
    # generated body): the cases after it sign people up on this same stack.
    restored = httpx.patch(
        f"{stack.gw}/api/admin/settings",
        json={"signupMode": "open"},
        headers={"Authorization": f"Bearer {admin.session}"},
        timeout=30,
    )
    assert restored.status_code == 200, f"restoring sign-up: {restored.status_code} {restored.text}"
    _remove_model_rules(stack.gw, admin.session)
    _gateway_reports[stack.gw] = reports
    return reports


def _remove_model_rules(gw: str, admin_token: str) -> None:
    """Deletes the model access rules and per-model limits the admin run may have made (valid
    generated bodies): a deny or a limit on a real model would refuse the cases after it."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    listed = httpx.get(f"{gw}/api/admin/model-access", headers=headers, timeout=30)
    assert listed.status_code == 200, f"listing model rules: {listed.status_code} {listed.text}"
    body = listed.json()
    for kind, path in (("rules", "model-access"), ("limits", "model-limits")):
        for entry in body[kind]:
            gone = httpx.delete(f"{gw}/api/admin/{path}/{entry['id']}", headers=headers, timeout=30)
            assert gone.status_code in (200, 404), f"deleting {path}: {gone.status_code}"


@case(
    "bad-input",
    "schemathesis-gateway",
    "every route of the gateway's /docs/json, generated inputs with a session and as an admin: "
    "no 5xx, answers match their declared schemas",
)
def fuzz_gateway(ctx: Context) -> None:
    failures = [f"[{label}] {f}" for label, r in gateway_fuzz(ctx) for f in r.failures]
    assert not failures, "\n".join(failures[:20])


@case(
    "bad-input",
    "schemathesis-gateway-content-types",
    "every answer of the gateway has a Content-Type its OpenAPI document declares",
)
def fuzz_gateway_types(ctx: Context) -> None:
    failures = [f"[{label}] {f}" for label, r in gateway_fuzz(ctx) for f in r.content_types]
    assert not failures, "\n".join(failures)


@case(
    "bad-input",
    "schemathesis-llm-server",
    "every route of llm-server's /openapi.json with the service token: no 5xx, answers match "
    "their declared schemas",
)
def fuzz_llm(ctx: Context) -> None:
    stack = ctx.stack
    llm = stack.llm[0].url
    report = schemathesis_run(
        f"{llm}/openapi.json",
        llm,
        {"Authorization": f"Bearer {stack.token}"},
        stack.workdir / "schemathesis-llm",
        [],
        max_examples=10,
        max_time=20,
    )
    ctx.tally.bad_inputs += report.cases
    ctx.tally.client_error_5xx += report.server_errors
    ctx.tally.notes += [f"schemathesis (llm-server) {e}" for e in report.tool_errors]
    failures = report.failures + report.content_types
    assert not failures, "\n".join(failures[:20])


@dataclass
class Bad:
    """One hand-made input and the statuses that are right for it."""

    name: str
    method: str
    path: str
    body: Any = None  # JSON-encoded unless bytes
    # 400 from the gateway's own validation, 422 from llm-server's (forwarded as it is).
    expect: tuple[int, ...] = (400, 422)
    headers: dict[str, str] | None = None
    auth: str = "key"  # key | session


def send(stack: Stack, token: str, bad: Bad, timeout: float = 60) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", **(bad.headers or {})}
    if isinstance(bad.body, bytes):
        headers.setdefault("content-type", "application/json")
        return httpx.request(
            bad.method, f"{stack.gw}{bad.path}", content=bad.body, headers=headers, timeout=timeout
        )
    return httpx.request(
        bad.method, f"{stack.gw}{bad.path}", json=bad.body, headers=headers, timeout=timeout
    )


def try_all(ctx: Context, stack: Stack, bads: list[Bad], account: str) -> list[str]:
    user = stack.account(account)
    wrong = []
    for bad in bads:
        token = user.api_key if bad.auth == "key" else user.session
        ctx.tally.bad_inputs += 1
        try:
            response = send(stack, token, bad, timeout=30)
        except httpx.TimeoutException:
            wrong.append(f"{bad.name}: no answer within 30 s")
            continue
        ctx.count_status(response.status_code)
        if response.status_code not in bad.expect:
            wrong.append(f"{bad.name}: {response.status_code} {response.text[:160]}")
        elif response.status_code >= 400 and "error" not in response.text:
            wrong.append(f"{bad.name}: {response.status_code} without the error envelope")
    return wrong


CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]

BASIC = [
    Bad("malformed JSON", "POST", CHAT, b'{"model": "default", "messages": [', (400,)),
    Bad("JSON array body", "POST", CHAT, [1, 2, 3]),
    Bad("messages not a list", "POST", CHAT, {"model": "default", "messages": "hi"}),
    Bad("no messages", "POST", CHAT, {"model": "default"}),
    Bad("negative max_tokens", "POST", CHAT, {"messages": MSG, "max_tokens": -1}),
    Bad("huge max_tokens", "POST", CHAT, {"messages": MSG, "max_tokens": 10**12}),
    Bad("temperature string", "POST", CHAT, {"messages": MSG, "temperature": "hot"}),
    Bad("temperature 1e309", "POST", CHAT, b'{"messages":[{"role":"user","content":"x"}],'
        b'"temperature":1e309}'),
    Bad("role unknown", "POST", CHAT, {"messages": [{"role": "god", "content": "x"}]}),
    Bad("content number", "POST", CHAT, {"messages": [{"role": "user", "content": 5}]}),
    Bad("n too large", "POST", CHAT, {"messages": MSG, "n": 1000, "max_tokens": 1}),
    Bad("unknown model", "POST", CHAT, {"model": "gpt-9", "messages": MSG, "max_tokens": 1},
        (400, 404, 422)),
    Bad("stop list of 1000", "POST", CHAT, {"messages": MSG, "stop": ["x"] * 1000,
        "max_tokens": 1}),
    Bad("body over 1 MiB", "POST", CHAT, {"messages": [{"role": "user",
        "content": "a" * (1 << 20)}]}, (413,)),
    Bad("form body", "POST", CHAT, b"a=1", (400, 415),
        {"content-type": "application/x-www-form-urlencoded"}),
    Bad("completions prompt object", "POST", "/v1/completions", {"prompt": {"a": 1}}),
    Bad("analyze no text", "POST", "/api/analyze", {"labels": ["a"]}),
    Bad("analyze 1000 labels", "POST", "/api/analyze", {"text": "x", "labels": ["a"] * 1000}),
    Bad("conversation title object", "POST", "/api/conversations", {"title": {"x": 1}},
        auth="session"),
    Bad("conversation title 100k", "POST", "/api/conversations", {"title": "t" * 100_000},
        auth="session"),
    Bad("profile mass assignment", "PATCH", "/api/user", {"name": "x", "role": "admin"},
        auth="session"),
    Bad("limit NaN", "GET", "/api/conversations?limit=NaN", auth="session"),
    Bad("limit negative", "GET", "/api/conversations?limit=-5", auth="session"),
    Bad("usage from garbage", "GET", "/api/user/usage?from=yesterday-ish", auth="session"),
    Bad("chat turn two modes", "POST", "/api/conversations/a0a0/messages",
        {"content": "x", "regenerate": True}, (400, 404), auth="session"),
    Bad("api key expiry negative", "POST", "/api/user/api-keys",
        {"name": "x", "expiresInDays": -3}, auth="session"),
]  # fmt: skip


@case(
    "bad-input",
    "hand-made-bad-inputs",
    "malformed, mistyped, oversized and out-of-range inputs: the right 4xx in the envelope",
)
def hand_made(ctx: Context) -> None:
    wrong = try_all(ctx, ctx.stack, BASIC, "bad-input-user")
    assert not wrong, "\n".join(wrong)


def schema_request(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": MSG,
        "max_tokens": 4,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


SCHEMA_BOMBS = [
    Bad("json_schema minItems 2e8", "POST", CHAT,
        schema_request({"type": "array", "items": {"type": "integer"}, "minItems": 200_000_000})),
    Bad("json_schema minLength 1e9", "POST", CHAT,
        schema_request({"type": "string", "minLength": 1_000_000_000})),
    Bad("json_schema nested 300", "POST", CHAT, schema_request(nested(300))),
    Bad("json_schema enum []", "POST", CHAT, schema_request({"enum": []})),
    Bad("json_schema anyOf []", "POST", CHAT, schema_request({"anyOf": []})),
    Bad("json_schema type []", "POST", CHAT, schema_request({"type": []})),
]  # fmt: skip


def servers_state(stack: Stack) -> list[str]:
    admin = stack.account("admin", role="admin")
    response = httpx.get(
        f"{stack.gw}/api/admin/servers", headers={"authorization": f"Bearer {admin.session}"}
    )
    return [str(s["state"]) for s in response.json()["servers"]]


def still_serving(stack: Stack, token: str, within: float = 30.0) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{stack.gw}{CHAT}",
        json={"messages": MSG, "max_tokens": 2},
        headers={"authorization": f"Bearer {token}"},
        timeout=within,
    )
    took = time.monotonic() - started
    assert response.status_code == 200, f"after the bombs: {response.status_code} {response.text}"
    assert took < within, f"after the bombs a 2-token answer took {took:.1f} s"


@case(
    "bad-input",
    "json-schema-bombs",
    "huge repetition counts, deep nesting and empty enum/anyOf/type in response_format: 400, "
    "and the server keeps answering",
)
def schema_bombs(ctx: Context) -> None:
    stack = two_servers(ctx)
    wrong = try_all(ctx, stack, SCHEMA_BOMBS, "schema-bomber")
    still_serving(stack, stack.account("schema-bomber").api_key)
    assert not wrong, "\n".join(wrong)


@case(
    "bad-input",
    "client-errors-do-not-eject",
    "JSON nested 5,000 deep and broken schemas, 4 times each: 400, and no server is ejected",
)
def no_ejection(ctx: Context) -> None:
    deep = b'{"messages":[{"role":"user","content":"x"}],"max_tokens":1,"x":' + b"[" * 5000
    deep += b"]" * 5000 + b"}"
    bads = [Bad("JSON nested 5000", "POST", CHAT, deep)] * 4
    bads += [SCHEMA_BOMBS[3]] * 4
    stack = two_servers(ctx)
    wrong = try_all(ctx, stack, bads, "ejector")
    states = servers_state(stack)
    assert all(s == "healthy" for s in states), f"servers after client errors: {states}"
    assert not wrong, "\n".join(wrong)


@case(
    "bad-input",
    "analyze-amplification",
    "/api/analyze with {text} 1,666 times and 8 labels: refused with 400 at once",
)
def analyze_amplification(ctx: Context) -> None:
    labels = [f"l{i}" for i in range(8)]
    body = {"text": "x" * 20_000, "template": "{text}" * 1666, "labels": labels}
    stack = two_servers(ctx)
    bad = Bad("template {text}x1666", "POST", "/api/analyze", body)
    stack.account("amplifier")
    started = time.monotonic()
    wrong = try_all(ctx, stack, [bad], "amplifier")
    took = time.monotonic() - started
    assert not wrong, "\n".join(wrong)
    assert took < 5, f"refusing it took {took:.1f} s"


@case(
    "bad-input",
    "max-tokens-cap-bypass",
    "a user capped at 8 tokens gets at most 8 whatever field says more; a string max_tokens: 400",
)
def cap_bypass(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("capped")
    stack.admin("set-limits", "--email", user.email, "--max-tokens", "8")
    as_string = Bad("max_tokens as string", "POST", CHAT, {"messages": MSG, "max_tokens": "8"})
    wrong = try_all(ctx, stack, [as_string], "capped")
    for body in (
        {"max_tokens": 1, "max_completion_tokens": 20},
        {"max_completion_tokens": 20},
        {"max_tokens": 8, "n": 3},
    ):
        response = httpx.post(
            f"{stack.gw}{CHAT}",
            json={"messages": MSG, "ignore_eos": True, **body},
            headers={"authorization": f"Bearer {user.api_key}"},
            timeout=120,
        )
        ctx.tally.bad_inputs += 1
        ctx.count_status(response.status_code)
        if response.status_code == 200:
            usage = response.json()["usage"]["completion_tokens"]
            choices = len(response.json()["choices"])
            if usage > 8 * choices or (usage > 8 and "n" not in body):
                wrong.append(f"{body}: {usage} tokens for a cap of 8")
    assert not wrong, "\n".join(wrong)


@case(
    "bad-input",
    "wrong-codes",
    "offset=1e20/Infinity: 400; a 64 KB header: 431",
)
def wrong_codes(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("codes-user")
    wrong = []
    for path in (
        "/api/conversations?offset=1e20",
        "/api/conversations?offset=Infinity",
        "/api/conversations?limit=1e20",
    ):
        response = httpx.get(
            f"{stack.gw}{path}", headers={"authorization": f"Bearer {user.session}"}
        )
        ctx.tally.bad_inputs += 1
        ctx.count_status(response.status_code)
        if response.status_code != 400:
            wrong.append(f"GET {path}: {response.status_code}")
    big = rawhttp.request(
        stack.gw, "GET", "/api/user", {"authorization": f"Bearer {user.session}",
                                       "x-big": "a" * 65536}
    )  # fmt: skip
    ctx.tally.bad_inputs += 1
    ctx.count_status(big.status)
    if big.status != 431:
        wrong.append(f"64 KB header: {big.status or 'connection closed without a status'}")
    assert not wrong, "\n".join(wrong)

"""Auth attacks on the gateway: forged tokens, other spellings of protected paths, sign-in lock
and limit evasion, CSRF, and who becomes admin."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import time
from typing import Any

import httpx

from adversarial import openapi, rawhttp
from adversarial.procs import start_gateway
from adversarial.registry import Context, Skip, breach, case
from adversarial.stack import WEB_ORIGIN, Account, Stack, fresh_ip


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def forged_tokens(stack: Stack, victim: Account, admin: Account) -> dict[str, str]:
    """JWTs an attacker can make: none, HMAC with a guessed or public key, a random EdDSA
    signature, a real token with its claims changed, and plain garbage."""
    real = httpx.get(
        f"{stack.gw}/api/auth/token", headers={"authorization": f"Bearer {victim.session}"}
    )
    assert real.status_code == 200, f"/api/auth/token: {real.status_code} {real.text}"
    token = str(real.json()["token"])
    head_b64, body_b64, sig_b64 = token.split(".")
    header = json.loads(unb64url(head_b64))
    claims = json.loads(unb64url(body_b64))
    jwks = httpx.get(f"{stack.gw}/api/auth/jwks").json()
    public_x = unb64url(jwks["keys"][0]["x"]) if jwks.get("keys") else b"x"
    now = int(time.time())
    elevated = {**claims, "role": "admin", "sub": claims.get("sub"), "exp": now + 3600}
    admin_claims = {**claims, "email": admin.email, "role": "admin"}

    def hs256(key: bytes, payload: dict[str, Any]) -> str:
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(payload).encode())
        sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64url(sig)}"

    return {
        "alg-none": jwt({"alg": "none", "typ": "JWT"}, elevated, b""),
        "alg-None": jwt({"alg": "None"}, elevated, b""),
        "hs256-random-key": hs256(secrets.token_bytes(32), elevated),
        "hs256-public-key-confusion": hs256(public_x, elevated),
        "hs256-auth-secret-guess": hs256(b"changeme", elevated),
        "eddsa-wrong-key": jwt(header, elevated, secrets.token_bytes(64)),
        "claims-swapped-real-signature": f"{head_b64}.{b64url(json.dumps(admin_claims).encode())}"
        f".{sig_b64}",
        "expired-resigned": jwt(header, {**claims, "exp": now - 10}, unb64url(sig_b64)),
        "kid-injection": jwt({**header, "kid": "../../../dev/null"}, elevated, unb64url(sig_b64)),
        "jku-injection": jwt(
            {**header, "jku": "http://127.0.0.1:1/jwks"}, elevated, secrets.token_bytes(64)
        ),
        "truncated": token[: len(token) // 2],
        "empty-signature": f"{head_b64}.{body_b64}.",
        "garbage": "a.b.c",
        "forged-api-key": "llm_" + secrets.token_urlsafe(32),
        "session-token-guess": secrets.token_urlsafe(24),
        "api-key-truncated": victim.api_key[:-2],
    }


def routes_needing_auth(ctx: Context) -> list[openapi.Route]:
    stack = ctx.stack
    document = openapi.load(f"{stack.gw}/docs/json")
    protected = openapi.protected(stack.gw, document)
    assert len(protected) >= 20, f"only {len(protected)} protected routes found"
    return protected


@case("auth", "forged-tokens", "every forged JWT/key on every protected route: 401, never 2xx/5xx")
def forged(ctx: Context) -> None:
    stack = ctx.stack
    victim = stack.account("jwt-victim")
    admin = stack.account("jwt-admin", role="admin")
    tokens = forged_tokens(stack, victim, admin)
    protected = routes_needing_auth(ctx)
    bad = []
    with httpx.Client(base_url=stack.gw, timeout=30) as client:
        for name, token in tokens.items():
            for route in protected:
                # Every token as a bearer; the key-shaped ones as X-API-Key too.
                schemes = ["authorization"] + (["x-api-key"] if "key" in name else [])
                for scheme in schemes:
                    value = f"Bearer {token}" if scheme == "authorization" else token
                    body: dict[str, Any] | None = (
                        {} if route.method in ("POST", "PUT", "PATCH") else None
                    )
                    response = client.request(
                        route.method, route.path, headers={scheme: value}, json=body
                    )
                    ctx.tally.auth_attacks += 1
                    ctx.count_status(response.status_code)
                    if response.status_code != 401:
                        bad.append(f"{name} via {scheme} on {route}: {response.status_code}")
    assert not bad, "forged credentials not refused with 401:\n" + "\n".join(bad[:20])


def spelled_requests(ctx: Context) -> list[tuple[str, str, int]]:
    """Every other spelling of every protected route, without credentials, over a raw
    socket: (method, target, status)."""
    stack = ctx.stack
    out = []
    for route in routes_needing_auth(ctx):
        for target in rawhttp.spellings(route.path, stack.gw):
            body = b"{}" if route.method in ("POST", "PUT", "PATCH") else b""
            headers = {"content-type": "application/json"} if body else {}
            response = rawhttp.request(stack.gw, route.method, target, headers, body)
            ctx.tally.auth_attacks += 1
            out.append((route.method, target, response.status))
    return out


@case(
    "auth",
    "path-tricks-protected-routes",
    "/./, %2e, //, trailing slash, case, absolute-form… of every protected route without "
    "credentials: never 2xx (and an answer)",
)
def path_tricks(ctx: Context) -> None:
    bad = [f"{m} {t}: {s}" for m, t, s in spelled_requests(ctx) if s == 0 or 200 <= s < 300]
    assert not bad, "other spellings of protected routes let a stranger in:\n" + "\n".join(bad)


@case(
    "auth",
    "path-tricks-no-5xx",
    "other spellings of protected routes (absolute-form /v1/* included) never answer 5xx",
)
def path_tricks_5xx(ctx: Context) -> None:
    bad = []
    for method, target, status in spelled_requests(ctx):
        ctx.count_status(status)
        if status >= 500:
            bad.append(f"{method} {target}: {status}")
    assert not bad, "server errors for other spellings:\n" + "\n".join(bad)


@case(
    "auth",
    "path-tricks-with-api-key-on-session-routes",
    "an API key on another spelling of a session-only route is still refused (403/404)",
)
def path_tricks_key(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("trick-key-user")
    bad = []
    for path in ("/api/user/api-keys", "/api/admin/users", "/api/admin/usage"):
        for target in [path, *rawhttp.spellings(path, stack.gw)]:
            response = rawhttp.request(
                stack.gw, "GET", target, {"authorization": f"Bearer {user.api_key}"}
            )
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status)
            if breach(response.status):
                bad.append(f"GET {target}: {response.status}")
    assert not bad, "an API key reached a session/admin route:\n" + "\n".join(bad)


@case("auth", "user-on-admin-routes", "a user's session on every admin route: 403")
def user_on_admin(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("not-admin")
    document = openapi.load(f"{stack.gw}/docs/json")
    admin_routes = [r for r in openapi.routes(document) if r.template.startswith("/api/admin")]
    assert admin_routes, "no /api/admin routes in the OpenAPI document"
    bad = []
    with httpx.Client(base_url=stack.gw, timeout=30) as client:
        for route in admin_routes:
            body: dict[str, Any] | None = {} if route.method in ("POST", "PUT", "PATCH") else None
            response = client.request(
                route.method,
                route.path,
                headers={"authorization": f"Bearer {user.session}"},
                json=body,
            )
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status_code)
            if response.status_code != 403:
                bad.append(f"{route}: {response.status_code}")
    assert not bad, "admin routes answered a user:\n" + "\n".join(bad)


@case("auth", "foreign-objects", "another user's conversation and API key: 404")
def foreign_objects(ctx: Context) -> None:
    stack = ctx.stack
    owner, other = stack.account("owner"), stack.account("intruder")
    own = {"authorization": f"Bearer {owner.session}"}
    theirs = {"authorization": f"Bearer {other.session}"}
    with httpx.Client(base_url=stack.gw, timeout=30) as client:
        created = client.post("/api/conversations", headers=own, json={"title": "secret"})
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        attempts = [
            client.get(f"/api/conversations/{cid}", headers=theirs),
            client.patch(f"/api/conversations/{cid}", headers=theirs, json={"title": "x"}),
            client.get(f"/api/conversations/{cid}/export?format=json", headers=theirs),
            client.delete(f"/api/conversations/{cid}", headers=theirs),
            client.delete(f"/api/user/api-keys/{owner.api_key_id}", headers=theirs),
        ]
        for response in attempts:
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status_code)
            assert response.status_code == 404, f"{response.request.url}: {response.status_code}"
        still = client.get(f"/api/conversations/{cid}", headers=own)
        assert still.status_code == 200 and still.json()["title"] == "secret"


def sign_in_raw(
    stack: Stack, target: str, email: str, password: str, ip: str, *, form: bool = False
) -> rawhttp.RawResponse:
    if form:
        body = f"email={email}&password={password}".encode()
        ctype = "application/x-www-form-urlencoded"
    else:
        body = json.dumps({"email": email, "password": password}).encode()
        ctype = "application/json"
    return rawhttp.request(
        stack.gw,
        "POST",
        target,
        {"content-type": ctype, "origin": WEB_ORIGIN, "x-forwarded-for": ip},
        body,
    )


SIGN_IN = "/api/auth/sign-in/email"


@case(
    "auth",
    "sign-in-lock",
    "wrong passwords for one account lock it (429 + Retry-After); the right one is refused then",
)
def sign_in_lock(ctx: Context) -> None:
    stack = ctx.stack
    victim = stack.account("lock-victim", key=False)
    ip = fresh_ip()
    statuses = []
    for _ in range(8):
        response = sign_in_raw(stack, SIGN_IN, victim.email, "wrong-password", ip)
        ctx.tally.auth_attacks += 1
        ctx.count_status(response.status)
        statuses.append(response.status)
        if response.status == 429:
            assert response.headers.get("retry-after"), "429 without Retry-After"
            break
    assert 429 in statuses, f"no lock after 8 wrong passwords: {statuses}"
    right = sign_in_raw(stack, SIGN_IN, victim.email, victim.password, ip)
    assert right.status == 429, f"locked account signed in: {right.status}"


@case(
    "auth",
    "sign-in-lock-path-tricks",
    "other spellings of the sign-in path and form bodies are refused or counted, and obey the lock",
)
def sign_in_lock_tricks(ctx: Context) -> None:
    stack = ctx.stack
    bad = []
    tricks = [
        (SIGN_IN, True),
        ("/api/auth/./sign-in/email", False),
        ("/api/auth/%2e/sign-in/email", False),
        ("/api/auth//sign-in/email", False),
        ("/api/auth/sign-in/email/", False),
        ("/api/auth/sign-in/x/../email", True),
        (f"{stack.gw}/api/auth/sign-in/email", False),
    ]
    for n, (target, form) in enumerate(tricks):
        victim = stack.account(f"trick-victim-{n}-{int(form)}", key=False)
        ip = fresh_ip()
        # Wrong passwords through the trick: either the spelling is refused before any password
        # is checked (400/404: nothing to count), or the check counts toward the lock.
        password_checked = False
        for _ in range(6):
            response = sign_in_raw(stack, target, victim.email, "wrong", ip, form=form)
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status)
            if response.status == 200:
                bad.append(f"{target} form={form}: wrong password signed in")
            password_checked |= response.status in (401, 403, 429)
        canonical = sign_in_raw(stack, SIGN_IN, victim.email, victim.password, ip)
        trick = sign_in_raw(stack, target, victim.email, victim.password, ip, form=form)
        ctx.tally.auth_attacks += 2
        if password_checked and canonical.status != 429:
            bad.append(f"{target} form={form}: failures not counted ({canonical.status})")
        if trick.status == 200:
            bad.append(f"{target} form={form}: signed in to a locked account")
    assert not bad, "sign-in lock bypassed:\n" + "\n".join(bad)


def external_address() -> str | None:
    """This machine's first non-loopback IPv4 address (a client the gateway does not trust
    as a proxy), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


@case(
    "auth",
    "lock-evasion-x-forwarded-for",
    "a client that is not a trusted proxy cannot dodge the sign-in lock with X-Forwarded-For",
)
def xff_evasion(ctx: Context) -> None:
    stack = ctx.stack
    address = external_address()
    if address is None:
        raise Skip("no non-loopback IPv4 address on this machine")
    port = stack.gw.rsplit(":", 1)[1]
    external = f"http://{address}:{port}"
    victim = stack.account("xff-victim", key=False)
    statuses = []
    for n in range(25):
        response = rawhttp.request(
            external,
            "POST",
            SIGN_IN,
            {
                "content-type": "application/json",
                "origin": WEB_ORIGIN,
                "x-forwarded-for": f"203.0.113.{n + 1}",
                "x-real-ip": f"203.0.113.{n + 1}",
            },
            json.dumps({"email": victim.email, "password": f"guess-{n}"}).encode(),
        )
        ctx.tally.auth_attacks += 1
        ctx.count_status(response.status)
        statuses.append(response.status)
        if response.status == 429:
            break
    assert 429 in statuses, f"25 guesses with rotating X-Forwarded-For, no lock: {statuses}"


@case(
    "auth",
    "better-auth-rate-limit-retry-after",
    "better-auth's own 429 (sign-up flood from one address) carries Retry-After",
)
def better_auth_429(ctx: Context) -> None:
    stack = ctx.stack
    ip = fresh_ip()
    for n in range(12):
        response = httpx.post(
            f"{stack.gw}/api/auth/sign-up/email",
            json={"email": f"flood-{n}-{secrets.token_hex(3)}@x.test", "password": "pw-" * 4,
                  "name": "f"},
            headers={"origin": WEB_ORIGIN, "x-forwarded-for": ip},
        )  # fmt: skip
        ctx.tally.auth_attacks += 1
        ctx.count_status(response.status_code)
        if response.status_code == 429:
            assert response.headers.get("retry-after"), f"429 without Retry-After: {response.text}"
            return
    raise AssertionError("12 sign-ups from one address in a minute were never limited")


@case(
    "auth",
    "csrf-cookie-requests",
    "cookie-authenticated changes with a foreign Origin or Sec-Fetch-Site cross-site: 403; "
    "better-auth POSTs without Origin: 403",
)
def csrf(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("csrf-user", key=False)
    signed = httpx.post(
        f"{stack.gw}/api/auth/sign-in/email",
        json={"email": user.email, "password": user.password},
        headers={"origin": WEB_ORIGIN, "x-forwarded-for": user.ip},
    )
    assert signed.status_code == 200, signed.text
    cookie = "; ".join(f"{k}={v}" for k, v in signed.cookies.items())
    assert cookie, "sign-in set no cookie"
    with httpx.Client(base_url=stack.gw, timeout=30) as client:
        cases = [
            ("POST", "/api/conversations", {"origin": "http://evil.example"}),
            ("POST", "/api/conversations", {"origin": "null"}),
            ("POST", "/api/conversations", {"sec-fetch-site": "cross-site"}),
            ("POST", "/api/conversations", {"origin": "http://localhost:3000.evil.example"}),
            ("PATCH", "/api/user", {"origin": "http://evil.example"}),
            ("POST", "/api/auth/sign-out", {}),
            ("POST", "/api/auth/sign-out", {"origin": "http://evil.example"}),
        ]
        for method, path, headers in cases:
            body: dict[str, Any] = {"name": "x"} if path == "/api/user" else {}
            response = client.request(
                method, path, headers={"cookie": cookie, **headers}, json=body
            )
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status_code)
            assert response.status_code == 403, (
                f"{method} {path} {headers}: {response.status_code} {response.text[:200]}"
            )
        ok = client.post(
            "/api/conversations", headers={"cookie": cookie, "origin": WEB_ORIGIN}, json={}
        )
        assert ok.status_code == 201, f"same-origin cookie request refused: {ok.status_code}"


@case(
    "auth",
    "first-sign-up-is-not-admin",
    "on a fresh install the first sign-up (and one with ADMIN_EMAIL) is a plain user",
)
def first_sign_up(ctx: Context) -> None:
    stack = ctx.stack
    workdir = stack.workdir / "fresh-install"
    admin_email = "boss@adversarial.test"
    gateway = start_gateway(
        workdir / "logs",
        upstreams=[p.url for p in stack.llm],
        token=stack.token,
        auth_secret=secrets.token_urlsafe(48),
        database_path=workdir / "data" / "gateway.sqlite",
        web_origin=WEB_ORIGIN,
        name="fresh-gateway",
        extra_env={"ADMIN_EMAIL": admin_email},
    )
    try:
        roles = {}
        for email in ("stranger@adversarial.test", admin_email):
            response = httpx.post(
                f"{gateway.url}/api/auth/sign-up/email",
                json={"email": email, "password": secrets.token_urlsafe(12), "name": "x"},
                headers={"origin": WEB_ORIGIN, "x-forwarded-for": fresh_ip()},
            )
            ctx.tally.auth_attacks += 1
            ctx.count_status(response.status_code)
            if response.status_code != 200:
                roles[email] = f"sign-up {response.status_code}"
                continue
            me = httpx.get(
                f"{gateway.url}/api/user",
                headers={"authorization": f"Bearer {response.json()['token']}"},
            )
            roles[email] = me.json().get("role")
        assert all(role != "admin" for role in roles.values()), f"open sign-up made: {roles}"
    finally:
        gateway.stop()


@case(
    "auth",
    "better-auth-admin-endpoints",
    "an admin cannot demote itself or impersonate through /api/auth/admin/* either",
)
def better_auth_admin(ctx: Context) -> None:
    stack = ctx.stack
    boss = stack.account("ba-admin", role="admin", key=False)
    victim = stack.account("ba-victim", key=False)
    me = httpx.get(f"{stack.gw}/api/user", headers={"authorization": f"Bearer {boss.session}"})
    boss_id = me.json()["id"]
    them = httpx.get(f"{stack.gw}/api/user", headers={"authorization": f"Bearer {victim.session}"})
    victim_id = them.json()["id"]
    headers = {"authorization": f"Bearer {boss.session}", "origin": WEB_ORIGIN}
    attempts = {
        "impersonate-user": {"userId": victim_id},
        "set-role": {"userId": boss_id, "role": "user"},
        "set-user-password": {"userId": victim_id, "newPassword": "attacker-pass-1"},
    }
    bad = []
    for endpoint, body in attempts.items():
        response = httpx.post(f"{stack.gw}/api/auth/admin/{endpoint}", json=body, headers=headers)
        ctx.tally.auth_attacks += 1
        ctx.count_status(response.status_code)
        if response.status_code < 300:
            bad.append(f"/api/auth/admin/{endpoint}: {response.status_code}")
    assert not bad, "better-auth's admin endpoints went around the gateway's rules: " + str(bad)

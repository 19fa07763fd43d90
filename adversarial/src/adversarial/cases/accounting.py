"""Usage accounting: every streamed request through an API key is billed once, for exactly the
tokens its client received."""

from __future__ import annotations

import asyncio

import httpx

from adversarial.accounting import Ledger, random_bodies, reconcile, run_streams
from adversarial.registry import Context, case
from adversarial.sse import StreamResult, bearer, chat_body, stream


@case(
    "accounting",
    "streams-billed-as-delivered",
    "12 concurrent streams over 4 API keys of 2 users: one usage row each, completion tokens "
    "equal to the tokens delivered",
)
def streams_billed(ctx: Context) -> None:
    stack = ctx.stack
    users = [stack.account("billing-a"), stack.account("billing-b")]
    keys = []
    for user in users:
        keys.append((user.api_key, user.api_key_id))
        keys.append(stack.new_key(user, "second"))
    bodies = random_bodies(12, 2, 8, seed=12)
    jobs = [(keys[i % len(keys)][0], body) for i, body in enumerate(bodies)]
    results = asyncio.run(run_streams(f"{stack.gw}/v1/chat/completions", jobs, concurrency=6))
    failed = [r for r in results if not r.complete]
    assert not failed, f"{len(failed)} streams did not complete: {failed[0]}"
    for body, result in zip(bodies, results, strict=True):
        assert 0 < result.tokens <= body["max_tokens"], (result.tokens, body["max_tokens"])
    ledgers = [Ledger(key_id) for _, key_id in keys]
    for i, result in enumerate(results):
        ledgers[i % len(keys)].results.append(result)
    problems = reconcile(stack, ledgers, ctx.tally)
    assert not problems, "\n".join(problems)


@case(
    "accounting",
    "client-gone-mid-stream",
    "a client that disconnects after 3 chunks is billed once, never less than it received",
)
def client_gone(ctx: Context) -> None:
    stack = ctx.stack
    user = stack.account("billing-quitter")

    async def quit_early() -> list[StreamResult]:
        async with httpx.AsyncClient(timeout=60) as client:
            body = chat_body(8, "Write a long story:", ignore_eos=True)
            url = f"{stack.gw}/v1/chat/completions"
            return [
                await stream(client, url, bearer(user.api_key), body, stop_after=3)
                for _ in range(3)
            ]

    results = asyncio.run(quit_early())
    assert all(r.abandoned and r.tokens >= 3 for r in results), results
    rows = stack.wait_usage(user.api_key_id, 3, timeout=15)
    if len(rows) < 3:
        ctx.tally.requests_lost += 3 - len(rows)
    if len(rows) > 3:
        ctx.tally.double_billed += len(rows) - 3
    assert len(rows) == 3, f"3 abandoned streams, {len(rows)} usage rows: {rows}"
    for row, result in zip(rows, results, strict=True):
        assert int(row["completion"]) >= result.tokens, f"billed less than delivered: {row}"

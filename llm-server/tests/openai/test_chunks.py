from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

from llm_server.engine.types import Finished, SamplingParams, TokenOut
from llm_server.generation.jobs import Job, RequestUsage
from llm_server.generation.stream import ChoiceStream
from llm_server.models import ModelLease
from llm_server.openai.chunks import Reply, chat_chunks
from llm_server.openai.protocol import ChatCompletionChunk


def reply(choices: int) -> Reply:
    model = cast(ModelLease, object())  # the chunks never read the job's model
    job = Job(model, [1, 2, 3], [SamplingParams(max_tokens=4)] * choices, "c", "chat")
    return Reply("chatcmpl-1", 0, "m", False, job, RequestUsage())


async def test_the_role_chunks_wait_for_the_first_event() -> None:
    # A request still queued for a slot sends nothing, so a proxy's first-token timeout keeps
    # counting until the model really started.
    started = asyncio.Event()

    async def events() -> AsyncIterator[tuple[int, TokenOut | Finished]]:
        await started.wait()
        yield 0, TokenOut("Hi", 7)
        yield 1, TokenOut("Yo", 8)
        yield 0, Finished("length", 3, 1)
        yield 1, Finished("length", 3, 1)

    chunks = chat_chunks(cast(ChoiceStream, events()), reply(2))
    first = asyncio.ensure_future(anext(chunks))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not first.done()
    started.set()
    out = [await first] + [c async for c in chunks]
    parsed = [c for c in out if isinstance(c, ChatCompletionChunk)]
    assert [c.choices[0].delta.role for c in parsed[:2]] == ["assistant", "assistant"]
    assert [c.choices[0].index for c in parsed[:2]] == [0, 1]


async def test_a_stream_without_events_still_announces_its_roles() -> None:
    async def events() -> AsyncIterator[tuple[int, TokenOut | Finished]]:
        return
        yield  # an async generator that yields nothing

    out = [c async for c in chat_chunks(cast(ChoiceStream, events()), reply(1))]
    assert isinstance(out[0], ChatCompletionChunk)
    assert out[0].choices[0].delta.role == "assistant"

"""Shaping a job's results into the API's bodies and streamed chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from llm_server.engine.types import Finished, TokenOut
from llm_server.generation.jobs import ChoiceResult, Job, RequestUsage
from llm_server.generation.stream import ChoiceStream
from llm_server.openai.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChoiceLogprobs,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    GenerateChunk,
    GenerateResponse,
    PromptTokensDetails,
    TokenLogprobOut,
    TopLogprobOut,
    Usage,
)
from llm_server.openai.sse import TokenChunks

# The prompt's exact token count, in the headers of every completion (streamed or not): a
# client that cancels mid-stream has it although it never reads the final usage.
PROMPT_TOKENS_HEADER = "x-prompt-tokens"


def prompt_tokens_header(job: Job) -> dict[str, str]:
    return {PROMPT_TOKENS_HEADER: str(len(job.prompt))}


@dataclass(frozen=True)
class Reply:
    """What every chunk and the final body of one completion share."""

    ident: str
    created: int
    model: str
    include_usage: bool
    job: Job
    usage: RequestUsage

    @property
    def wants_logprobs(self) -> bool:
        return self.job.choices[0].logprobs is not None

    @property
    def headers(self) -> dict[str, str]:
        return prompt_tokens_header(self.job)

    def envelope(self) -> dict[str, Any]:
        """The fields every body and chunk of this completion starts with."""
        return {"id": self.ident, "created": self.created, "model": self.model}


def chat_completion(results: list[ChoiceResult], reply: Reply) -> ChatCompletion:
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(content=r.text),
            logprobs=chat_logprobs(r.tokens) if reply.wants_logprobs else None,
            finish_reason=finish_reason(r),
        )
        for i, r in enumerate(results)
    ]
    return ChatCompletion(**reply.envelope(), choices=choices, usage=usage_body(reply.usage))


async def chat_chunks(stream: ChoiceStream, reply: Reply) -> AsyncIterator[BaseModel | bytes]:
    job, usage, model = reply.job, reply.usage, reply.model
    ident, created, include_usage = reply.ident, reply.created, reply.include_usage

    def chunk(choices: list[ChatChunkChoice], usage_out: Usage | None = None) -> BaseModel:
        return ChatCompletionChunk(
            id=ident, created=created, model=model, choices=choices, usage=usage_out
        )

    tokens = TokenChunks(
        lambda index, text: chunk([ChatChunkChoice(index=index, delta=ChatDelta(content=text))])
    )
    # The role chunks go out with the first event, not before: until then the request may be
    # waiting for a slot, and a proxy that times the first chunk (the gateway's first-token
    # timeout) must not take a queued request for one that started and then went quiet.
    roles = [
        chunk([ChatChunkChoice(index=index, delta=ChatDelta(role="assistant", content=""))])
        for index in range(len(job.choices))
    ]
    wants_logprobs = reply.wants_logprobs
    async for index, event in stream:
        if roles:
            for role in roles:
                yield role
            roles = []
        if isinstance(event, TokenOut) and not wants_logprobs:
            yield tokens.encode(index, event.text)
        elif isinstance(event, TokenOut):
            yield chunk(
                [
                    ChatChunkChoice(
                        index=index,
                        delta=ChatDelta(content=event.text),
                        logprobs=chat_logprobs([event]),
                    )
                ]
            )
        elif event.reason in ("stop", "length"):
            yield chunk(
                [ChatChunkChoice(index=index, delta=ChatDelta(), finish_reason=event.reason)]
            )
    for role in roles:
        yield role
    if include_usage:
        yield chunk([], usage_body(usage))


def completion(results: list[ChoiceResult], reply: Reply) -> Completion:
    choices = [
        CompletionChoice(
            index=i,
            text=r.text,
            finish_reason=finish_reason(r),
            logprobs=completion_logprobs(r.tokens) if reply.wants_logprobs else None,
        )
        for i, r in enumerate(results)
    ]
    return Completion(**reply.envelope(), choices=choices, usage=usage_body(reply.usage))


async def completion_chunks(stream: ChoiceStream, reply: Reply) -> AsyncIterator[BaseModel | bytes]:
    usage, model = reply.usage, reply.model
    ident, created, include_usage = reply.ident, reply.created, reply.include_usage
    wants_logprobs = reply.wants_logprobs
    tokens = TokenChunks(
        lambda index, text: Completion(
            id=ident,
            created=created,
            model=model,
            choices=[CompletionChoice(index=index, text=text, finish_reason=None)],
        )
    )
    async for index, event in stream:
        if isinstance(event, TokenOut) and not wants_logprobs:
            yield tokens.encode(index, event.text)
            continue
        if isinstance(event, TokenOut):
            choice = CompletionChoice(
                index=index,
                text=event.text,
                finish_reason=None,
                logprobs=completion_logprobs([event]) if wants_logprobs else None,
            )
        elif event.reason in ("stop", "length"):
            choice = CompletionChoice(index=index, text="", finish_reason=event.reason)
        else:
            continue
        yield Completion(id=ident, created=created, model=model, choices=[choice])
    if include_usage:
        yield Completion(
            id=ident, created=created, model=model, choices=[], usage=usage_body(usage)
        )


def generate_response(result: ChoiceResult, usage: RequestUsage) -> GenerateResponse:
    return GenerateResponse(
        text=result.text, finish_reason=finish_reason(result), usage=usage_body(usage)
    )


async def generate_chunks(
    stream: ChoiceStream, usage: RequestUsage
) -> AsyncIterator[BaseModel | bytes]:
    async for _, event in stream:
        if isinstance(event, TokenOut):
            yield GenerateChunk(text=event.text)
        elif event.reason in ("stop", "length"):
            yield GenerateChunk(text="", finish_reason=event.reason, usage=usage_body(usage))


def finish_reason(result: ChoiceResult) -> Any:
    assert isinstance(result.finish, Finished)
    return result.finish.reason


def usage_body(usage: RequestUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_prompt_tokens),
    )


def chat_logprobs(tokens: list[TokenOut]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=t.text,
                logprob=t.logprob or 0.0,
                bytes=list(t.text.encode()),
                top_logprobs=[
                    TopLogprobOut(token=a.token, logprob=a.logprob, bytes=list(a.token.encode()))
                    for a in t.top_logprobs
                ],
            )
            for t in tokens
        ]
    )


def completion_logprobs(tokens: list[TokenOut]) -> CompletionLogprobs:
    offsets, position = [], 0
    for token in tokens:
        offsets.append(position)
        position += len(token.text)
    return CompletionLogprobs(
        tokens=[t.text for t in tokens],
        token_logprobs=[t.logprob or 0.0 for t in tokens],
        top_logprobs=[{a.token: a.logprob for a in t.top_logprobs} for t in tokens],
        text_offset=offsets,
    )

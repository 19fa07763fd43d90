"""OpenAI-compatible routes and `/generate`: parse, call the service, shape JSON or SSE."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from llm_server.engine.types import Finished, TokenOut
from llm_server.inference import ChoiceResult, ChoiceStream, InferenceService, Job, RequestUsage
from llm_server.openai.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    ChoiceLogprobs,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    GenerateChunk,
    GenerateRequest,
    GenerateResponse,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    SamplingFields,
    TokenLogprobOut,
    TopLogprobOut,
    Usage,
)
from llm_server.openai.sse import TokenChunks, sse
from llm_server.openapi import ERROR_RESPONSES, sse_response

router = APIRouter()
T = TypeVar("T")
CLIENT_HEADER = "x-client-id"
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

    @classmethod
    def open(cls, prefix: str, body: SamplingFields, job: Job, request: Request) -> Reply:
        service: InferenceService = request.app.state.inference
        return cls(
            ident=f"{prefix}-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=service.check_model(body.model),
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            job=job,
            usage=usage_of(request),
        )

    @property
    def wants_logprobs(self) -> bool:
        return self.job.choices[0].logprobs is not None


async def get_service(request: Request) -> InferenceService:
    # async: FastAPI would run a plain function in a worker thread, a hop per request.
    service: InferenceService = request.app.state.inference
    service.ensure_accepting(request.app.state.lifecycle.state == "ready")
    return service


Service = Annotated[InferenceService, Depends(get_service)]


def client_of(request: Request) -> str:
    """Fair scheduling key: the user id the gateway sends; requests without one share."""
    return request.headers.get(CLIENT_HEADER, "")[:128] or "anonymous"


def usage_of(request: Request) -> RequestUsage:
    usage = RequestUsage()
    request.state.usage = usage
    return usage


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES, tags=["openai"])
async def list_models(request: Request) -> ModelList:
    """The loaded model (also reachable as `default`)."""
    engine = request.app.state.engine
    created = int(request.app.state.started_at)
    template = engine.has_chat_template
    kind = None if template is None else "chat" if template else "base"
    card = ModelCard(
        id=engine.model_id, created=created, context_length=engine.context_length, kind=kind
    )
    return ModelList(data=[card])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={**ERROR_RESPONSES, **sse_response(ChatCompletionChunk)},
    tags=["openai"],
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, response: Response, service: Service
) -> ChatCompletion | StreamingResponse:
    reply = Reply.open("chatcmpl", body, await service.chat_job(body, client_of(request)), request)
    headers = prompt_tokens_header(reply.job)
    if body.stream:
        return sse(chat_chunks(service.start(reply.job, reply.usage), reply), headers)
    response.headers.update(headers)
    results = await until_disconnected(request, service.run(reply.job, reply.usage))
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(content=r.text),
            logprobs=chat_logprobs(r.tokens) if reply.wants_logprobs else None,
            finish_reason=finish_reason(r),
        )
        for i, r in enumerate(results)
    ]
    return ChatCompletion(
        id=reply.ident,
        created=reply.created,
        model=reply.model,
        choices=choices,
        usage=usage_body(reply.usage),
    )


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
    for index in range(len(job.choices)):
        yield chunk([ChatChunkChoice(index=index, delta=ChatDelta(role="assistant", content=""))])
    wants_logprobs = reply.wants_logprobs
    async for index, event in stream:
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
    if include_usage:
        yield chunk([], usage_body(usage))


@router.post(
    "/v1/completions",
    response_model=Completion,
    responses={**ERROR_RESPONSES, **sse_response(Completion)},
    tags=["openai"],
)
async def completions(
    body: CompletionRequest, request: Request, response: Response, service: Service
) -> Completion | StreamingResponse:
    reply = Reply.open(
        "cmpl", body, await service.completion_job(body, client_of(request)), request
    )
    headers = prompt_tokens_header(reply.job)
    if body.stream:
        return sse(completion_chunks(service.start(reply.job, reply.usage), reply), headers)
    response.headers.update(headers)
    results = await until_disconnected(request, service.run(reply.job, reply.usage))
    choices = [
        CompletionChoice(
            index=i,
            text=r.text,
            finish_reason=finish_reason(r),
            logprobs=completion_logprobs(r.tokens) if reply.wants_logprobs else None,
        )
        for i, r in enumerate(results)
    ]
    return Completion(
        id=reply.ident,
        created=reply.created,
        model=reply.model,
        choices=choices,
        usage=usage_body(reply.usage),
    )


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


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses={**ERROR_RESPONSES, **sse_response(GenerateChunk)},
    tags=["simple"],
)
async def generate(
    body: GenerateRequest, request: Request, response: Response, service: Service
) -> GenerateResponse | StreamingResponse:
    """A prompt in, text out: no chat template, one choice."""
    job = await service.generate_job(body, client_of(request))
    usage = usage_of(request)
    headers = prompt_tokens_header(job)
    if body.stream:
        return sse(generate_chunks(service.start(job, usage), usage), headers)
    response.headers.update(headers)
    [result] = await until_disconnected(request, service.run(job, usage))
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


# ---------------------------------------------------------------- shaping helpers


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and its generation) when the client goes away."""
    task: asyncio.Future[T] = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise asyncio.CancelledError


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

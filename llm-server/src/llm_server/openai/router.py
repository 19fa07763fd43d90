"""OpenAI-compatible routes and `/generate`: parse, build the job, answer JSON or SSE."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from llm_server.dependencies import ClientId, Generation, ReadyGeneration, track_usage
from llm_server.openai.chunks import prompt_tokens_header
from llm_server.openai.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    GenerateChunk,
    GenerateRequest,
    GenerateResponse,
    ModelCard,
    ModelList,
    SamplingDefaults,
)
from llm_server.openai.serving import OpenAIServing
from llm_server.openai.sse import sse
from llm_server.openapi import ERROR_RESPONSES, sse_response

router = APIRouter()
T = TypeVar("T")


async def openai_serving(request: Request, _: ReadyGeneration) -> OpenAIServing:
    """The serving layer, once the server takes requests."""
    serving: OpenAIServing = request.app.state.openai
    return serving


Serving = Annotated[OpenAIServing, Depends(openai_serving)]


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES, tags=["openai"])
async def list_models(generation: Generation) -> ModelList:
    """Every model, loaded or not (the default one is also reachable as `default`)."""
    return ModelList(
        data=[
            ModelCard(
                id=info.id,
                created=info.created,
                context_length=info.context_length,
                kind=info.kind,
                state=info.state,
                aliases=list(info.aliases),
                sampling_defaults=SamplingDefaults(**info.sampling),
            )
            for info in generation.models()
        ]
    )


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={**ERROR_RESPONSES, **sse_response(ChatCompletionChunk)},
    tags=["openai"],
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    response: Response,
    serving: Serving,
    client: ClientId,
) -> ChatCompletion | StreamingResponse:
    job = await serving.chat_job(body, client)
    reply = serving.reply("chatcmpl", body, job, track_usage(request))
    if body.stream:
        return sse(serving.chat_chunks(reply), reply.headers)
    response.headers.update(reply.headers)
    return await until_disconnected(request, serving.chat_completion(reply))


@router.post(
    "/v1/completions",
    response_model=Completion,
    responses={**ERROR_RESPONSES, **sse_response(Completion)},
    tags=["openai"],
)
async def completions(
    body: CompletionRequest,
    request: Request,
    response: Response,
    serving: Serving,
    client: ClientId,
) -> Completion | StreamingResponse:
    job = await serving.completion_job(body, client)
    reply = serving.reply("cmpl", body, job, track_usage(request))
    if body.stream:
        return sse(serving.completion_chunks(reply), reply.headers)
    response.headers.update(reply.headers)
    return await until_disconnected(request, serving.completion(reply))


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses={**ERROR_RESPONSES, **sse_response(GenerateChunk)},
    tags=["simple"],
)
async def generate(
    body: GenerateRequest,
    request: Request,
    response: Response,
    serving: Serving,
    client: ClientId,
) -> GenerateResponse | StreamingResponse:
    """A prompt in, text out: no chat template, one choice."""
    job = await serving.generate_job(body, client)
    usage = track_usage(request)
    headers = prompt_tokens_header(job)
    if body.stream:
        return sse(serving.generate_chunks(job, usage), headers)
    response.headers.update(headers)
    return await until_disconnected(request, serving.generate(job, usage))


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

"""The OpenAI-compatible API's serving layer: checks a request against the model and the
limits and builds its job, then hands the job's stream to `chunks` to be shaped."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TypeVar

from pydantic import BaseModel

from llm_server.config import Settings
from llm_server.engine import Engine
from llm_server.engine.chat import BASE_CHAT_REPEAT_PENALTY, Message, tokenize_segments
from llm_server.engine.types import SamplingParams
from llm_server.errors import ContextLengthExceededError, InvalidRequestError, UnprocessableError
from llm_server.generation.jobs import Job, RequestUsage
from llm_server.generation.service import GenerationService
from llm_server.models import ModelLease
from llm_server.openai import chunks
from llm_server.openai.chunks import Reply
from llm_server.openai.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    GenerateRequest,
    GenerateResponse,
    ResponseFormat,
    SamplingFields,
)

Request = TypeVar("Request", ChatCompletionRequest, CompletionRequest, GenerateRequest)


def with_model_defaults(request: Request, model: ModelLease) -> Request:
    """The request with the model's own sampling defaults (its models-file entry) in the
    fields it omitted; fields it sent are kept."""
    missing = {k: v for k, v in model.sampling.items() if k not in request.model_fields_set}
    return request.model_copy(update=missing) if missing else request


@dataclass(frozen=True)
class CompletionLength:
    """The completion's length as the client asked for it."""

    value: int | None  # None: the client sent none
    field: str  # the field the client used, named in errors
    default: int  # used when the client sent none, capped by the context the prompt leaves


def chat_length(request: ChatCompletionRequest, default: int) -> CompletionLength:
    """`max_completion_tokens` (OpenAI's current name) or `max_tokens`; when both are sent the
    smaller wins, so that a proxy which clamps either one is never bypassed by the other."""
    sent = [
        (value, field)
        for field, value in (
            ("max_completion_tokens", request.max_completion_tokens),
            ("max_tokens", request.max_tokens),
        )
        if value is not None
    ]
    if not sent:
        return CompletionLength(None, "max_completion_tokens", default)
    value, field = min(sent)
    return CompletionLength(value, field, default)


class OpenAIServing:
    """Jobs from `/v1/*` and `/generate` requests, and their replies as bodies or chunks."""

    def __init__(self, generation: GenerationService, settings: Settings) -> None:
        self._generation = generation
        self._settings = settings

    # ------------------------------------------------------------------ replies
    def reply(self, prefix: str, body: SamplingFields, job: Job, usage: RequestUsage) -> Reply:
        """What every chunk and the final body of one completion share."""
        return Reply(
            ident=f"{prefix}-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=job.model.id,
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            job=job,
            usage=usage,
        )

    def chat_chunks(self, reply: Reply) -> AsyncIterator[BaseModel | bytes]:
        return chunks.chat_chunks(self._generation.start(reply.job, reply.usage), reply)

    async def chat_completion(self, reply: Reply) -> ChatCompletion:
        return chunks.chat_completion(await self._generation.run(reply.job, reply.usage), reply)

    def completion_chunks(self, reply: Reply) -> AsyncIterator[BaseModel | bytes]:
        return chunks.completion_chunks(self._generation.start(reply.job, reply.usage), reply)

    async def completion(self, reply: Reply) -> Completion:
        return chunks.completion(await self._generation.run(reply.job, reply.usage), reply)

    def generate_chunks(self, job: Job, usage: RequestUsage) -> AsyncIterator[BaseModel | bytes]:
        return chunks.generate_chunks(self._generation.start(job, usage), usage)

    async def generate(self, job: Job, usage: RequestUsage) -> GenerateResponse:
        [result] = await self._generation.run(job, usage)
        return chunks.generate_response(result, usage)

    # ------------------------------------------------------------------ jobs
    async def chat_job(self, request: ChatCompletionRequest, client: str) -> Job:
        """The job of a chat request: its messages through the model's chat template."""
        model = await self._generation.resolve_model(request.model)
        with model.released_on_error():
            request = with_model_defaults(request, model)
            # Checked before the prompt is tokenized: a refused request costs no CPU.
            if request.top_logprobs is not None and not request.logprobs:
                raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs")
            engine = model.engine
            messages = [
                Message("system" if m.role == "developer" else m.role, m.text())
                for m in request.messages
            ]
            segments = engine.render_chat(messages)
            # Message text is never read as control tokens (see `engine.chat`); tokenizing is
            # plain CPU work, off the event loop.
            prompt = await asyncio.to_thread(tokenize_segments, engine.tokenize, segments)
            top = request.top_logprobs if request.top_logprobs is not None else 0
            length = chat_length(request, self._settings.default_max_tokens)
            # A base model left alone repeats itself; most clients send no penalty at all, so
            # one that sent none gets llama.cpp's repetition penalty, one that sent any is
            # obeyed.
            penalties_sent = request.model_fields_set & {"presence_penalty", "frequency_penalty"}
            base = engine.has_chat_template is False
            params = await self._params(
                engine,
                request,
                prompt,
                length,
                "messages",
                logprobs=top if request.logprobs else None,
                extra_stops=engine.chat_stop_strings,
                repeat_penalty=BASE_CHAT_REPEAT_PENALTY if base and not penalties_sent else 1.0,
            )
            return self._job(model, request, prompt, params, client, "chat")

    async def completion_job(self, request: CompletionRequest, client: str) -> Job:
        """The job of a text completion: the prompt as it is."""
        model = await self._generation.resolve_model(request.model)
        with model.released_on_error():
            request = with_model_defaults(request, model)
            engine = model.engine
            prompt = await asyncio.to_thread(engine.tokenize, request.text(), add_special=True)
            # OpenAI's completions default to 16 tokens.
            length = CompletionLength(request.max_tokens, "max_tokens", 16)
            params = await self._params(
                engine, request, prompt, length, "prompt", logprobs=request.logprobs
            )
            return self._job(model, request, prompt, params, client, "completions")

    async def generate_job(self, request: GenerateRequest, client: str) -> Job:
        """The job of `/generate`: one choice, no logprobs, no grammar."""
        model = await self._generation.resolve_model(request.model)
        with model.released_on_error():
            request = with_model_defaults(request, model)
            engine = model.engine
            prompt = await asyncio.to_thread(engine.tokenize, request.prompt, add_special=True)
            default = self._settings.default_max_tokens
            length = CompletionLength(request.max_tokens, "max_tokens", default)
            params = SamplingParams(
                max_tokens=self._max_tokens(engine, prompt, length, "prompt"),
                temperature=request.temperature,
                top_p=request.top_p,
                top_k=request.top_k,
                min_p=request.min_p,
                seed=request.seed,
                stop=tuple(request.stop),
                presence_penalty=request.presence_penalty,
                frequency_penalty=request.frequency_penalty,
                ignore_eos=request.ignore_eos,
            )
            return Job(model, prompt, [params], client, "generate")

    def _job(
        self,
        model: ModelLease,
        request: SamplingFields,
        prompt: list[int],
        params: SamplingParams,
        client: str,
        route: str,
    ) -> Job:
        """`n` choices of `params`, each with its own seed."""
        choices = [params]
        for index in range(1, request.n):
            seed = None if params.seed is None else (params.seed + index) & 0xFFFFFFFF
            choices.append(replace(params, seed=seed))
        return Job(model, prompt, choices, client, route)

    async def _params(
        self,
        engine: Engine,
        request: SamplingFields,
        prompt: list[int],
        length: CompletionLength,
        prompt_param: str,
        *,
        logprobs: int | None,
        extra_stops: tuple[str, ...] = (),
        repeat_penalty: float = 1.0,
    ) -> SamplingParams:
        if request.n > self._settings.max_n:
            raise UnprocessableError(
                f"n must be at most {self._settings.max_n} on this server", param="n"
            )
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        max_tokens = self._max_tokens(engine, prompt, length, prompt_param)
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            min_p=request.min_p,
            seed=request.seed,
            stop=(*stops, *extra_stops),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            repeat_penalty=repeat_penalty,
            logprobs=logprobs,
            grammar=await self._grammar(engine, request.response_format),
            ignore_eos=request.ignore_eos,
        )

    def _max_tokens(
        self, engine: Engine, prompt: list[int], length: CompletionLength, prompt_param: str
    ) -> int:
        """A completion length that fits the context with the prompt: refused up front (never
        cut off after a stream started). Only a length the client sent is refused; a default
        shrinks to the room left."""
        context, limit = engine.context_length, self._settings.max_tokens_limit
        room = context - len(prompt)
        if room < 1:
            raise ContextLengthExceededError(
                f"the prompt has {len(prompt)} tokens and this model's context is {context} "
                "tokens: no room is left for an answer; shorten the prompt",
                param=prompt_param,
            )
        max_tokens, field = length.value, length.field
        if max_tokens is None:
            return min(length.default, limit, room)
        if max_tokens > limit:
            raise UnprocessableError(f"{field} must be at most {limit} on this server", param=field)
        if max_tokens > room:
            raise ContextLengthExceededError(
                f"the prompt has {len(prompt)} tokens and this model's context is {context} "
                f"tokens, so {field} can be at most {room} (it is {max_tokens}): shorten the "
                f"prompt or lower {field}",
                param=field,
            )
        return max_tokens

    async def _grammar(self, engine: Engine, response_format: ResponseFormat | None) -> str | None:
        """A GBNF grammar forcing JSON (any object, or one matching the given schema)."""
        if response_format is None or response_format.type == "text":
            return None
        if response_format.type == "json_object":
            return await engine.json_grammar(None)
        if response_format.json_schema is None or response_format.json_schema.schema_ is None:
            raise InvalidRequestError(
                "response_format json_schema needs a schema", param="response_format.json_schema"
            )
        return await engine.json_grammar(response_format.json_schema.schema_)

"""The service between routes and engine: checks a request against the model and the limits,
runs its `n` generations, and measures them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace

from llm_server.config import Settings
from llm_server.engine import Engine, Generation
from llm_server.engine.chat import (
    BASE_CHAT_REPEAT_PENALTY,
    Message,
    tokenize_segments,
)
from llm_server.engine.errors import (
    EngineError,
    EngineUnavailableError,
    GenerationTimeoutError,
    GrammarError,
)
from llm_server.engine.types import Finished, GenerationEvent, SamplingParams, TokenOut
from llm_server.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    UnavailableError,
    UnprocessableError,
)
from llm_server.observability.metrics import Metrics
from llm_server.observability.tracing import record_generation
from llm_server.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    GenerateRequest,
    ResponseFormat,
    SamplingFields,
)


@dataclass(frozen=True)
class Job:
    """A validated generation request: the prompt's tokens and one set of params per choice."""

    prompt: list[int]
    choices: list[SamplingParams]
    client: str
    route: str


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


@dataclass
class ChoiceResult:
    text: str = ""
    tokens: list[TokenOut] = field(default_factory=list)
    finish: Finished | None = None


@dataclass
class RequestUsage:
    """What a request consumed; the request log and the metrics read it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    ttft_s: float | None = None


class InferenceService:
    """Builds jobs from requests and runs them on the engine."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._metrics = metrics

    # ------------------------------------------------------------------ building jobs
    def check_model(self, name: str) -> str:
        if name not in ("default", self._engine.model_id):
            raise ModelNotFoundError(
                f"the model '{name}' does not exist; this server has '{self._engine.model_id}'",
                param="model",
            )
        return self._engine.model_id

    async def chat_job(self, request: ChatCompletionRequest, client: str) -> Job:
        self.check_model(request.model)
        # Checked before the prompt is tokenized: a refused request costs no CPU.
        if request.top_logprobs is not None and not request.logprobs:
            raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs")
        messages = [
            Message("system" if m.role == "developer" else m.role, m.text())
            for m in request.messages
        ]
        segments = self._engine.render_chat(messages)
        # Message text is never read as control tokens (see `engine.chat`); tokenizing is
        # plain CPU work, off the event loop.
        prompt = await asyncio.to_thread(tokenize_segments, self._engine.tokenize, segments)
        top = request.top_logprobs if request.top_logprobs is not None else 0
        logprobs = top if request.logprobs else None
        length = chat_length(request, self._settings.default_max_tokens)
        extra_stops = self._engine.chat_stop_strings
        # A base model left alone repeats itself; most clients send no penalty at all, so
        # one that sent none gets llama.cpp's repetition penalty, one that sent any is obeyed.
        penalties_sent = request.model_fields_set & {"presence_penalty", "frequency_penalty"}
        base = self._engine.has_chat_template is False
        repeat = BASE_CHAT_REPEAT_PENALTY if base and not penalties_sent else 1.0
        return await self._job(
            request, prompt, length, logprobs, extra_stops, client, "chat", repeat_penalty=repeat
        )

    async def completion_job(self, request: CompletionRequest, client: str) -> Job:
        self.check_model(request.model)
        prompt = await asyncio.to_thread(self._engine.tokenize, request.text(), add_special=True)
        # OpenAI's completions default to 16 tokens.
        length = CompletionLength(request.max_tokens, "max_tokens", 16)
        return await self._job(request, prompt, length, request.logprobs, (), client, "completions")

    async def generate_job(self, request: GenerateRequest, client: str) -> Job:
        prompt = await asyncio.to_thread(self._engine.tokenize, request.prompt, add_special=True)
        length = CompletionLength(
            request.max_tokens, "max_tokens", self._settings.default_max_tokens
        )
        params = self._params(
            prompt,
            length,
            "prompt",
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            seed=request.seed,
            stop=tuple(request.stop),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            ignore_eos=request.ignore_eos,
        )
        return Job(prompt, [params], client, "generate")

    async def _job(
        self,
        request: SamplingFields,
        prompt: list[int],
        length: CompletionLength,
        logprobs: int | None,
        extra_stops: tuple[str, ...],
        client: str,
        route: str,
        repeat_penalty: float = 1.0,
    ) -> Job:
        if request.n > self._settings.max_n:
            raise UnprocessableError(
                f"n must be at most {self._settings.max_n} on this server", param="n"
            )
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        params = self._params(
            prompt,
            length,
            "messages" if route == "chat" else "prompt",
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            seed=request.seed,
            stop=(*stops, *extra_stops),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            repeat_penalty=repeat_penalty,
            logprobs=logprobs,
            grammar=await self.grammar_for(request.response_format),
            ignore_eos=request.ignore_eos,
        )
        choices = [params]
        for index in range(1, request.n):
            seed = None if params.seed is None else (params.seed + index) & 0xFFFFFFFF
            choices.append(replace(params, seed=seed))
        return Job(prompt, choices, client, route)

    def _params(
        self, prompt: list[int], length: CompletionLength, prompt_param: str, **fields: object
    ) -> SamplingParams:
        """Sampling params whose prompt and completion fit the context: refused up front
        (never cut off after a stream started). Only a length the client sent is refused; a
        default shrinks to the room left."""
        context, limit = self._engine.context_length, self._settings.max_tokens_limit
        room = context - len(prompt)
        if room < 1:
            raise ContextLengthExceededError(
                f"the prompt has {len(prompt)} tokens and this model's context is {context} "
                "tokens: no room is left for an answer; shorten the prompt",
                param=prompt_param,
            )
        max_tokens, field = length.value, length.field
        if max_tokens is None:
            max_tokens = min(length.default, limit, room)
        elif max_tokens > limit:
            raise UnprocessableError(f"{field} must be at most {limit} on this server", param=field)
        elif max_tokens > room:
            raise ContextLengthExceededError(
                f"the prompt has {len(prompt)} tokens and this model's context is {context} "
                f"tokens, so {field} can be at most {room} (it is {max_tokens}): shorten the "
                f"prompt or lower {field}",
                param=field,
            )
        return SamplingParams(max_tokens=max_tokens, **fields)  # type: ignore[arg-type]

    async def grammar_for(self, response_format: ResponseFormat | None) -> str | None:
        """A GBNF grammar forcing JSON (any object, or one matching the given schema)."""
        if response_format is None or response_format.type == "text":
            return None
        if response_format.type == "json_object":
            return await self._engine.json_grammar(None)
        if response_format.json_schema is None or response_format.json_schema.schema_ is None:
            raise InvalidRequestError(
                "response_format json_schema needs a schema", param="response_format.json_schema"
            )
        return await self._engine.json_grammar(response_format.json_schema.schema_)

    # ------------------------------------------------------------------ running jobs
    def ensure_accepting(self, ready: bool) -> None:
        if not ready:
            raise UnavailableError(
                "the server is not ready (loading or shutting down)", retry_after=1
            )

    async def run(self, job: Job, usage: RequestUsage) -> list[ChoiceResult]:
        """Run every choice to the end; raises if any of them failed."""
        results = [ChoiceResult() for _ in job.choices]
        async for index, event in self.start(job, usage):
            result = results[index]
            if isinstance(event, TokenOut):
                result.text += event.text
                result.tokens.append(event)
            else:
                result.finish = event
        return results

    def start(self, job: Job, usage: RequestUsage) -> ChoiceStream:
        """Queue every choice now (so a full queue is an HTTP error, not a broken stream)."""
        generations: list[Generation] = []
        try:
            for params in job.choices:
                generations.append(self._engine.start(job.prompt, params, job.client))
        except BaseException:
            for generation in generations:
                generation.cancel()
            raise
        usage.prompt_tokens = len(job.prompt)
        self._metrics.prompt_tokens.inc(len(job.prompt))
        return ChoiceStream(generations, usage, self._metrics)


class ChoiceStream:
    """The events of every choice, interleaved as produced and tagged with the choice index.

    A failed or cancelled choice raises an `EngineError` after the tokens before it;
    leaving the iteration early cancels every choice.
    """

    def __init__(self, generations: list[Generation], usage: RequestUsage, metrics: Metrics):
        self._generations = generations
        self._usage = usage
        self._metrics = metrics
        self._started = 0.0
        self._last_token_at: dict[int, float] = {}

    async def __aiter__(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        self._started = time.perf_counter()
        # One choice (the common case) needs no task and no second queue per token.
        events = self._single() if len(self._generations) == 1 else self._interleaved()
        try:
            async for index, event in events:
                if isinstance(event, Finished):
                    self._account(index, event)
                yield index, event
        finally:
            await events.aclose()
            for generation in self._generations:
                generation.cancel()

    def _observe(self, index: int, now: float) -> None:
        last = self._last_token_at.get(index)
        if last is None and self._usage.ttft_s is None:
            self._usage.ttft_s = now - self._started
            self._metrics.time_to_first_token.observe(self._usage.ttft_s)
        elif last is not None:
            self._metrics.inter_token.observe(now - last)
        self._last_token_at[index] = now

    def _account(self, index: int, event: Finished) -> None:
        self._usage.completion_tokens += event.completion_tokens
        if index == 0:
            self._usage.cached_prompt_tokens = event.cached_prompt_tokens
            record_generation(self._started, time.perf_counter(), self._usage.ttft_s, event)
        self._metrics.completion_tokens.inc(event.completion_tokens)
        if event.reason not in ("stop", "length"):
            raise engine_failure(event)

    async def _single(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        async for event in self._generations[0].events():
            if isinstance(event, TokenOut):
                self._observe(0, time.perf_counter())
            yield 0, event

    async def _interleaved(self) -> AsyncGenerator[tuple[int, GenerationEvent], None]:
        queue: asyncio.Queue[tuple[int, GenerationEvent]] = asyncio.Queue()
        prompt_tokens = self._usage.prompt_tokens

        async def pump(index: int, generation: Generation) -> None:
            try:
                async for event in generation.events():
                    if isinstance(event, TokenOut):
                        self._observe(index, time.perf_counter())
                    await queue.put((index, event))
            except Exception as exc:  # a broken engine must end the stream, not hang it
                await queue.put((index, Finished("error", prompt_tokens, 0, error=str(exc))))

        tasks = [asyncio.create_task(pump(i, g)) for i, g in enumerate(self._generations)]
        remaining = len(tasks)
        try:
            while remaining:
                index, event = await queue.get()
                remaining -= isinstance(event, Finished)
                yield index, event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def engine_failure(event: Finished) -> EngineError:
    """The error a generation that ended other than by stop or length is reported as."""
    message = event.error or "generation was interrupted"
    if event.reason == "timeout":
        return GenerationTimeoutError(message)
    if event.reason == "unsatisfiable":
        return GrammarError(
            "the response_format schema allows nothing the model can write next (an empty "
            "character class, a NUL character, ...): fix the schema"
        )
    return EngineUnavailableError(message)

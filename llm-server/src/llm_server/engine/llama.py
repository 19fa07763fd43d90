"""The llama.cpp engine: one GGUF model, one context shared by every running sequence."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

import llama_cpp

from llm_server.config import Settings
from llm_server.engine.base import EngineLoad
from llm_server.engine.chat import ChatFormatter, Message, Segment
from llm_server.engine.errors import EngineUnavailableError, InvalidTextError
from llm_server.engine.grammar import JsonGrammars
from llm_server.engine.model import LoadedModel, resolve_model_path
from llm_server.engine.sampling import build_sampler, compile_grammar
from llm_server.engine.scheduler import Scheduler, SchedulerLimits
from llm_server.engine.sequence import Sequence
from llm_server.engine.strategy import GENERATE, SCORE
from llm_server.engine.types import Finished, GenerationEvent, SamplingParams, ScoredToken

logger = logging.getLogger("llm_server.engine")
_llama_logger = logging.getLogger("llm_server.llama_cpp")


def _log_llama(level: int, text: bytes, _: ctypes.c_void_p) -> None:
    # llama.cpp prints hundreds of lines while loading; keep only warnings and errors.
    if level in (3, 4) and text:  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
        _llama_logger.warning(text.decode(errors="replace").rstrip())


# Kept at module level: llama.cpp holds the pointer for the life of the process.
_LLAMA_LOG_CALLBACK = llama_cpp.llama_log_callback(_log_llama)


class LlamaEngine:
    """Serves one GGUF model through llama.cpp with continuous batching."""

    def __init__(self, settings: Settings, chat_template: str | None = None) -> None:
        """`chat_template`: used instead of the GGUF's own (a models-file override)."""
        self._settings = settings
        self._chat_template = chat_template
        self._model: LoadedModel | None = None
        self._scheduler: Scheduler | None = None
        self._chat: ChatFormatter | None = None
        self._model_id = settings.model_alias or ""
        self._context_length = settings.context_length
        self._max_token_bytes = 1
        self._relay = EventRelay()
        self._grammars = JsonGrammars(self._check_grammar)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def max_token_bytes(self) -> int:
        return self._max_token_bytes

    def load(self) -> None:
        llama_cpp.llama_log_set(_LLAMA_LOG_CALLBACK, ctypes.c_void_p(0))
        settings = self._settings
        path = resolve_model_path(settings.model_path)
        model = LoadedModel.load(path)
        self._model = model
        self._model_id = settings.model_alias or path.name.removesuffix(".gguf")
        self._context_length = min(settings.context_length, model.n_ctx_train, settings.n_ctx)
        self._chat = ChatFormatter.for_model(model, self._chat_template)
        self._max_token_bytes = model.longest_token_bytes()
        limits = SchedulerLimits(
            max_running=settings.max_running,
            max_queue=settings.max_queue,
            step_tokens=settings.n_batch,
            ubatch_tokens=settings.n_ubatch,
            kv_cells=settings.n_ctx,
            request_timeout_s=settings.request_timeout_s,
            swa_full=settings.swa_full,
            flash_attention=settings.flash_attention,
            prefill_chunk_tokens=settings.prefill_chunk_tokens,
            batch_multiple=settings.batch_multiple,
            prefix_cache_bytes=settings.prefix_cache_bytes,
        )
        self._scheduler = Scheduler(
            model,
            limits,
            settings.n_threads,
            lambda params: build_sampler(params, model.vocab),
            flush=self._relay.flush,
        )

    def load_stats(self) -> EngineLoad:
        if self._scheduler is None:
            return EngineLoad(running=0, queued=0)
        return self._scheduler.load()

    async def close(self) -> None:
        await self._grammars.close()
        if self._scheduler is not None:
            await asyncio.to_thread(self._scheduler.close, self._settings.drain_timeout_s)
            self._scheduler = None
        if self._model is not None:
            self._model.close()
            self._model = None

    # ------------------------------------------------------------------ text
    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            # JSON may carry a lone UTF-16 surrogate ("\ud800"), which no UTF-8 text holds.
            raise InvalidTextError(
                f"the text holds a lone surrogate ({exc.object[exc.start]!a} at character "
                f"{exc.start}): send valid Unicode"
            ) from None
        return self._loaded().tokenize(text, add_special=add_special, parse_special=parse_special)

    def token_text(self, token: int) -> str:
        return self._loaded().token_text(token)

    def render_chat(self, messages: list[Message]) -> list[Segment]:
        assert self._chat is not None
        return self._chat.render(messages)

    @property
    def chat_stop_strings(self) -> tuple[str, ...]:
        assert self._chat is not None
        return self._chat.stop_strings

    @property
    def has_chat_template(self) -> bool | None:
        return None if self._chat is None else self._chat.uses_model_template

    async def json_grammar(self, schema: dict[str, Any] | None) -> str:
        return await self._grammars.grammar(schema)

    def _check_grammar(self, grammar: str) -> None:
        # Compiled once here so that a grammar llama.cpp refuses is the client's 400, not a
        # sequence failing inside the scheduler.
        llama_cpp.llama_sampler_free(compile_grammar(self._loaded().vocab, grammar))

    # ------------------------------------------------------------------ inference
    def start(self, prompt: list[int], params: SamplingParams, client: str) -> LlamaGeneration:
        """Queue one completion now; its events stream from `events()`."""
        queue: asyncio.Queue[GenerationEvent | list[ScoredToken]] = asyncio.Queue()
        sequence = Sequence(GENERATE, prompt, self._emitter(queue), client, params=params)
        return LlamaGeneration(self._submit(sequence), sequence, queue)

    async def score(
        self, tokens: list[int], score_from: int, top_k: int, client: str
    ) -> list[ScoredToken]:
        """Log-probability of every token from `score_from` on, given the tokens before it."""
        queue: asyncio.Queue[GenerationEvent | list[ScoredToken]] = asyncio.Queue()
        sequence = Sequence(
            SCORE, tokens, self._emitter(queue), client, score_from=score_from, score_top_k=top_k
        )
        scheduler = self._submit(sequence)
        try:
            result = await queue.get()
        except asyncio.CancelledError:
            scheduler.cancel(sequence)
            raise
        if isinstance(result, Finished):
            raise EngineUnavailableError(result.error or "scoring was interrupted")
        assert isinstance(result, list)
        return result

    # ------------------------------------------------------------------ helpers
    def _submit(self, sequence: Sequence) -> Scheduler:
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineUnavailableError("the model is not loaded")
        scheduler.submit(sequence)
        return scheduler

    def _emitter(
        self, queue: asyncio.Queue[GenerationEvent | list[ScoredToken]]
    ) -> Callable[[GenerationEvent | list[ScoredToken]], None]:
        return self._relay.emitter(queue)

    def _loaded(self) -> LoadedModel:
        if self._model is None:
            raise EngineUnavailableError("the model is not loaded")
        return self._model


class LlamaGeneration:
    """One queued sequence seen from the event loop."""

    def __init__(
        self,
        scheduler: Scheduler,
        sequence: Sequence,
        queue: asyncio.Queue[GenerationEvent | list[ScoredToken]],
    ) -> None:
        self._scheduler = scheduler
        self._sequence = sequence
        self._queue = queue
        self._finished = False

    async def events(self) -> AsyncGenerator[GenerationEvent, None]:
        try:
            while not self._finished:
                event = await self._queue.get()
                assert not isinstance(event, list)
                self._finished = isinstance(event, Finished)
                yield event
        finally:
            self.cancel()

    def cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._scheduler.cancel(self._sequence)


Item = GenerationEvent | list[ScoredToken]


class EventRelay:
    """Carries events from the scheduler thread to the event loop, a step's worth at a time:
    one loop wake-up per decode step instead of one per token."""

    def __init__(self) -> None:
        # Touched only by the scheduler thread (emit and flush both run there).
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Item], Item]]] = {}

    def emitter(self, queue: asyncio.Queue[Item]) -> Callable[[Item], None]:
        loop = asyncio.get_running_loop()

        def emit(event: Item) -> None:
            self._pending.setdefault(loop, []).append((queue, event))

        return emit

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for loop, items in pending.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(_deliver, items)


def _deliver(items: list[tuple[asyncio.Queue[Item], Item]]) -> None:
    for queue, event in items:
        queue.put_nowait(event)

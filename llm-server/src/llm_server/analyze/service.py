"""Scoring a text with the model: per-token log-probabilities, perplexity, zero-shot labels."""

from __future__ import annotations

import asyncio
import math

from llm_server.analyze.protocol import (
    DEFAULT_TEMPLATE,
    Alternative,
    AnalyzedToken,
    AnalyzeRequest,
    AnalyzeResponse,
    LabelScore,
)
from llm_server.engine import Engine
from llm_server.engine.slots import common_prefix
from llm_server.errors import ContextLengthExceededError, InvalidRequestError
from llm_server.generation.service import GenerationService


def _utf8_bytes(text: str) -> int:
    """Length in UTF-8 bytes. A lone surrogate ("\\ud800", which JSON can carry) counts as its
    3 bytes here instead of raising: the tokenizer refuses it with the client's 400 after."""
    return len(text.encode("utf-8", "surrogatepass"))


class AnalyzeService:
    """`/analyze` on the model the request names (resolved by the generation service)."""

    def __init__(self, generation: GenerationService) -> None:
        self._generation = generation

    async def analyze(self, request: AnalyzeRequest, client: str) -> AnalyzeResponse:
        """The request's text scored by its model, held for the whole analysis."""
        with await self._generation.resolve_model(request.model) as model:
            return await self._analyze(model.engine, model.id, request, client)

    async def _analyze(
        self, engine: Engine, model: str, request: AnalyzeRequest, client: str
    ) -> AnalyzeResponse:
        prompt = classification_prompt(request)
        longest = _utf8_bytes(request.text)
        if request.labels:
            label = max(_utf8_bytes(label) for label in request.labels)
            longest = max(longest, _utf8_bytes(prompt) + 1 + label)
        check_prompt_bytes(longest, engine, "text")
        # Tokenizing is plain CPU work (a few ms for 100 kB): off the event loop.
        tokens = await asyncio.to_thread(engine.tokenize, request.text, add_special=True)
        check_length(engine, len(tokens), "text")
        scored = await engine.score(tokens, 1, request.top_logprobs, client)
        first_id = tokens[0]
        out = [
            AnalyzedToken(
                token=engine.token_text(first_id), token_id=first_id, logprob=None, top_logprobs=[]
            )
        ]
        out += [
            AnalyzedToken(
                token=s.text,
                token_id=s.token_id,
                logprob=s.logprob,
                top_logprobs=[
                    Alternative(token=a.token, logprob=a.logprob) for a in s.top_logprobs
                ],
            )
            for s in scored
        ]
        logprobs = [s.logprob for s in scored if s.logprob is not None]
        perplexity = math.exp(-sum(logprobs) / len(logprobs)) if logprobs else None
        classification = None
        if request.labels:
            classification = await classify(engine, request, prompt, client)
        return AnalyzeResponse(
            model=model,
            token_count=len(tokens),
            perplexity=perplexity,
            tokens=out,
            classification=classification,
        )


async def classify(
    engine: Engine, request: AnalyzeRequest, prompt: str, client: str
) -> list[LabelScore]:
    """Compare log P(label | prompt) across labels; softmax turns them into probabilities."""

    def tokenize_all() -> tuple[list[int], list[list[int]]]:
        prefix = engine.tokenize(prompt, add_special=True)
        check_length(engine, len(prefix), "template")
        fulls = []
        for label in request.labels:
            full = engine.tokenize(prompt + " " + label.strip(), add_special=True)
            check_length(engine, len(full), "labels")
            fulls.append(full)
        return prefix, fulls

    prefix, fulls = await asyncio.to_thread(tokenize_all)

    async def label_logprob(full: list[int]) -> float:
        shared = common_prefix(prefix, full)
        scored = await engine.score(full, max(shared, 1), 0, client)
        return sum(s.logprob or 0.0 for s in scored)

    totals = await asyncio.gather(*(label_logprob(full) for full in fulls))
    peak = max(totals)
    weights = [math.exp(t - peak) for t in totals]
    norm = sum(weights)
    return [
        LabelScore(label=label, probability=w / norm, logprob=t)
        for label, w, t in zip(request.labels, weights, totals, strict=True)
    ]


def check_length(engine: Engine, count: int, param: str) -> None:
    if count > engine.context_length:
        raise ContextLengthExceededError(
            f"the text has {count} tokens; this model's context is {engine.context_length}",
            param=param,
        )


def classification_prompt(request: AnalyzeRequest) -> str:
    """The template with the text in its one `{text}`; each label is scored after it."""
    template = request.template or DEFAULT_TEMPLATE
    count = template.count("{text}")
    if count != 1:
        # More than one would copy the text (up to the body size) into the prompt each time.
        raise InvalidRequestError(
            f"template must contain {{text}} exactly once (it has it {count} times)",
            param="template",
        )
    for label in request.labels:
        if not label.strip():
            raise InvalidRequestError("a label must not be only whitespace", param="labels")
    return template.replace("{text}", request.text)


def check_prompt_bytes(size: int, engine: Engine, param: str) -> None:
    """Refuse, before tokenizing it, a text too long to fit the context whatever its tokens."""
    limit = engine.context_length * engine.max_token_bytes
    if size > limit:
        raise ContextLengthExceededError(
            f"the prompt is {size} bytes; this model's context ({engine.context_length} "
            f"tokens of at most {engine.max_token_bytes} bytes) holds at most {limit} bytes",
            param=param,
        )

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


class AnalyzeService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def analyze(self, request: AnalyzeRequest, client: str) -> AnalyzeResponse:
        engine = self._engine
        tokens = engine.tokenize(request.text, add_special=True)
        self._check_length(len(tokens), "text")
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
            classification = await self._classify(request, client)
        return AnalyzeResponse(
            model=engine.model_id,
            token_count=len(tokens),
            perplexity=perplexity,
            tokens=out,
            classification=classification,
        )

    async def _classify(self, request: AnalyzeRequest, client: str) -> list[LabelScore]:
        """Compare log P(label | prompt) across labels; softmax turns them into probabilities."""
        template = request.template or DEFAULT_TEMPLATE
        if "{text}" not in template:
            raise InvalidRequestError("template must contain {text}", param="template")
        prompt = template.replace("{text}", request.text)
        prefix = self._engine.tokenize(prompt, add_special=True)

        async def label_logprob(label: str) -> float:
            full = self._engine.tokenize(prompt + " " + label.strip(), add_special=True)
            shared = common_prefix(prefix, full)
            self._check_length(len(full), "labels")
            scored = await self._engine.score(full, max(shared, 1), 0, client)
            return sum(s.logprob or 0.0 for s in scored)

        totals = await asyncio.gather(*(label_logprob(label) for label in request.labels))
        peak = max(totals)
        weights = [math.exp(t - peak) for t in totals]
        norm = sum(weights)
        return [
            LabelScore(label=label, probability=w / norm, logprob=t)
            for label, w, t in zip(request.labels, weights, totals, strict=True)
        ]

    def _check_length(self, count: int, param: str) -> None:
        if count > self._engine.context_length:
            raise ContextLengthExceededError(
                f"the text has {count} tokens; this model's context is "
                f"{self._engine.context_length}",
                param=param,
            )

"""Bodies of `/analyze`: what the model thinks of a text."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from llm_server.openai.protocol import StrictModel

DEFAULT_TEMPLATE = "{text}\nThis text is about"


class AnalyzeRequest(StrictModel):
    text: Annotated[str, Field(min_length=1)]
    model: str = "default"
    top_logprobs: Annotated[int, Field(ge=0, le=20)] = 5
    labels: Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(max_length=20, default_factory=list)
    ]
    template: str | None = Field(
        default=None,
        description="Prompt for classification; `{text}` marks where the text goes. Each "
        "label's likelihood is measured as the continuation of this prompt.",
    )


class Alternative(BaseModel):
    token: str
    logprob: float


class AnalyzedToken(BaseModel):
    token: str
    token_id: int
    logprob: float | None = Field(description="null for the first token: nothing precedes it")
    top_logprobs: list[Alternative]


class LabelScore(BaseModel):
    label: str
    probability: float
    logprob: float


class AnalyzeResponse(BaseModel):
    model: str
    token_count: int
    perplexity: float | None
    tokens: list[AnalyzedToken]
    classification: list[LabelScore] | None = None

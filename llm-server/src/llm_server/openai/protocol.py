"""Request and response bodies of the OpenAI-compatible API (and `/generate`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# Stop strings are matched against every generated token's text in the decoding thread, in
# time that grows with the square of their length: bounded, so that one request cannot slow
# every stream down.
MAX_STOP_CHARS = 1000
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]

# What a request that omits them gets: llama-server's defaults (llama.cpp's
# `common_params_sampling`), which most clients get from it and Ollama. The OpenAI SDKs cannot
# send `top_k` or `min_p`; without a cut, every token would be drawn from the whole vocabulary
# (262,144 tokens for Gemma 3). `top_k: 0, top_p: 1, min_p: 0` asks for the whole distribution.
DEFAULT_TOP_K = 40
DEFAULT_TOP_P = 0.95
DEFAULT_MIN_P = 0.05
TopK = Annotated[
    int,
    Field(
        ge=0,
        le=1000,
        description="Extension (as llama-server): draw from the k most likely tokens; 0: no "
        f"limit. Default {DEFAULT_TOP_K}, as llama-server.",
    ),
]
TopP = Annotated[
    float,
    Field(
        gt=0.0,
        le=1.0,
        description="Nucleus sampling, as OpenAI's; 1: no cut. Default "
        f"{DEFAULT_TOP_P} (llama-server's), not OpenAI's 1.",
    ),
]
MinP = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        description="Extension (as llama-server): drop tokens less likely than min_p times the "
        f"most likely one; 0: no cut. Default {DEFAULT_MIN_P}, as llama-server.",
    ),
]


class StrictModel(BaseModel):
    """Unknown fields are an error; NaN and infinities are refused; no value changes type
    (`"max_tokens": "8"` is an error, not 8)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class StreamOptions(StrictModel):
    include_usage: bool = False


class JsonSchemaFormat(StrictModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(StrictModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class SamplingFields(StrictModel):
    """Fields shared by every generation request."""

    model: str = "default"
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: TopP = DEFAULT_TOP_P
    top_k: TopK = DEFAULT_TOP_K
    min_p: MinP = DEFAULT_MIN_P
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    n: Annotated[int, Field(ge=1, le=16)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    user: str | None = Field(default=None, max_length=256)
    ignore_eos: bool = Field(
        default=False,
        description="Extension (as in llama-server and vLLM): keep generating past the "
        "end-of-sequence token until max_tokens, for benchmarks.",
    )

    @field_validator("stop")
    @classmethod
    def _stops_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        check_stops([value] if isinstance(value, str) else value or [])
        return value


def check_stops(stops: list[str]) -> None:
    """Stop strings are neither empty nor longer than `MAX_STOP_CHARS`."""
    if any(not s for s in stops):
        raise ValueError("stop strings must not be empty")
    if any(len(s) > MAX_STOP_CHARS for s in stops):
        raise ValueError(f"a stop string may be at most {MAX_STOP_CHARS} characters")


class TextPart(StrictModel):
    type: Literal["text"]
    text: str


class ChatMessage(StrictModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None


class CompletionRequest(SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    echo: Literal[False] = False

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class GenerateRequest(StrictModel):
    """The simple form: a prompt in, text out."""

    prompt: Annotated[str, Field(min_length=1)]
    model: str = "default"
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: TopP = DEFAULT_TOP_P
    top_k: TopK = DEFAULT_TOP_K
    min_p: MinP = DEFAULT_MIN_P
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    stop: Annotated[list[str], Field(max_length=4, default_factory=list)]
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    stream: bool = False
    ignore_eos: bool = False

    @field_validator("stop")
    @classmethod
    def _stops_bounded(cls, value: list[str]) -> list[str]:
        check_stops(value)
        return value


# ---------------------------------------------------------------- responses


class PromptTokensDetails(BaseModel):
    cached_tokens: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class SamplingDefaults(BaseModel):
    """Extension: the sampling a request gets for the fields it omits."""

    temperature: float = 1.0
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P
    min_p: float = DEFAULT_MIN_P


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "llm-server"
    context_length: int
    sampling_defaults: SamplingDefaults = Field(
        default_factory=SamplingDefaults,
        description="What a request that omits these fields gets: llama-server's defaults, "
        "or the model's own from the models file.",
    )
    kind: Literal["base", "chat"] | None = Field(
        default=None,
        description=(
            "`base`: the GGUF has no chat template (a base model, which continues text; chat "
            "is a `User:`/`Assistant:` transcript); `chat`: it has one (or its models-file "
            "entry sets `chat_template`); null while the single model loads."
        ),
    )
    state: Literal["loaded", "loading", "unloaded", "failed"] = Field(
        default="loaded",
        description="Extension: a model that is not loaded is loaded by the first request "
        "naming it (which waits for it, up to LLM_MODEL_LOAD_WAIT_S).",
    )
    aliases: list[str] = Field(
        default_factory=list, description="Extension: other names requests may use."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class GenerateResponse(BaseModel):
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage


class GenerateChunk(BaseModel):
    """One streamed piece of `/generate`; the last has `finish_reason` and `usage`."""

    text: str
    finish_reason: Literal["stop", "length"] | None = None
    usage: Usage | None = None

"""Jobs from OpenAI requests: the model, the limits, the context, on the scripted engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm_server.config import Settings
from llm_server.engine.chat import BASE_CHAT_REPEAT_PENALTY
from llm_server.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    UnprocessableError,
)
from llm_server.openai.protocol import ChatCompletionRequest, CompletionRequest, GenerateRequest
from llm_server.openai.serving import OpenAIServing
from tests.fakes import FakeEngine, openai_serving


@pytest.fixture
async def service(settings: Settings, engine: FakeEngine) -> AsyncIterator[OpenAIServing]:
    yield openai_serving(engine, settings)
    await engine.close()


def chat(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi there"}], **fields}
    )


async def test_the_model_is_found_by_id_or_alias(service: OpenAIServing) -> None:
    job = await service.completion_job(CompletionRequest(prompt="a", model="fake-model"), "c")
    assert job.prompt == [1, 1]
    await service.completion_job(CompletionRequest(prompt="a", model="default"), "c")
    with pytest.raises(ModelNotFoundError):
        await service.completion_job(CompletionRequest(prompt="a", model="gpt-4"), "c")


async def test_prompt_plus_max_tokens_over_the_context_is_refused(
    service: OpenAIServing,
) -> None:
    with pytest.raises(ContextLengthExceededError, match="context is 64 tokens"):
        await service.completion_job(CompletionRequest(prompt="a b c", max_tokens=62), "c")
    job = await service.completion_job(CompletionRequest(prompt="a b c", max_tokens=60), "c")
    assert job.choices[0].max_tokens == 60


async def test_a_prompt_that_fills_the_context_is_refused(service: OpenAIServing) -> None:
    with pytest.raises(ContextLengthExceededError):
        await service.completion_job(CompletionRequest(prompt="w " * 70, max_tokens=None), "c")


async def test_default_max_tokens_fits_the_remaining_context(service: OpenAIServing) -> None:
    job = await service.generate_job(GenerateRequest(prompt="a b", stop=[]), "c")
    assert job.choices[0].max_tokens == 64 - 3


async def test_configured_caps_are_422(settings: Settings, engine: FakeEngine) -> None:
    capped = openai_serving(engine, settings.model_copy(update={"max_n": 2, "max_tokens_limit": 8}))
    with pytest.raises(UnprocessableError, match="n must be at most 2"):
        await capped.chat_job(chat(n=3), "c")
    with pytest.raises(UnprocessableError, match="max_tokens"):
        await capped.chat_job(chat(max_tokens=9), "c")


async def test_n_choices_get_distinct_seeds(service: OpenAIServing) -> None:
    job = await service.chat_job(chat(n=3, seed=7, max_tokens=4), "c")
    assert [p.seed for p in job.choices] == [7, 8, 9]


async def test_top_logprobs_needs_logprobs(service: OpenAIServing) -> None:
    with pytest.raises(InvalidRequestError, match="logprobs"):
        await service.chat_job(chat(top_logprobs=2), "c")
    job = await service.chat_job(chat(logprobs=True, top_logprobs=2), "c")
    assert job.choices[0].logprobs == 2


async def test_json_schema_becomes_a_grammar(service: OpenAIServing) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    job = await service.chat_job(
        chat(
            response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
        ),
        "c",
    )
    assert job.choices[0].grammar is not None
    assert "root" in job.choices[0].grammar
    with pytest.raises(InvalidRequestError, match="schema"):
        await service.chat_job(chat(response_format={"type": "json_schema"}), "c")


async def test_an_omitted_length_shrinks_to_the_room_left(service: OpenAIServing) -> None:
    """A prompt near the limit with no max_tokens is not refused for a length the client
    never sent (completions default to 16, chat to the configured default)."""
    near = "w " * 59  # <bos> + 59 words: 4 tokens of room in the fake's 64
    job = await service.completion_job(CompletionRequest(prompt=near), "c")
    assert job.choices[0].max_tokens == 4
    job = await service.completion_job(CompletionRequest(prompt="a b"), "c")
    assert job.choices[0].max_tokens == 16
    job = await service.chat_job(chat(messages=[{"role": "user", "content": "w " * 40}]), "c")
    assert job.choices[0].max_tokens == 64 - len(job.prompt)


async def test_the_error_names_the_length_field_the_client_sent(
    service: OpenAIServing,
) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(ContextLengthExceededError) as raised:
            await service.chat_job(chat(**{field: 60}), "c")
        assert raised.value.param == field
        assert f"so {field} can be at most" in raised.value.message
        assert "the prompt has" in raised.value.message
        assert "context is 64 tokens" in raised.value.message


async def test_a_prompt_that_leaves_no_room_names_the_prompt(service: OpenAIServing) -> None:
    with pytest.raises(ContextLengthExceededError) as raised:
        await service.chat_job(chat(messages=[{"role": "user", "content": "w " * 70}]), "c")
    assert raised.value.param == "messages"
    assert "max_tokens" not in raised.value.message
    assert raised.value.code == "context_length_exceeded"


async def test_the_smaller_of_both_length_fields_wins(service: OpenAIServing) -> None:
    job = await service.chat_job(chat(max_tokens=1, max_completion_tokens=40), "c")
    assert job.choices[0].max_tokens == 1
    job = await service.chat_job(chat(max_tokens=30, max_completion_tokens=2), "c")
    assert job.choices[0].max_tokens == 2


async def test_the_cap_names_the_field_used(settings: Settings, engine: FakeEngine) -> None:
    capped = openai_serving(engine, settings.model_copy(update={"max_tokens_limit": 8}))
    with pytest.raises(UnprocessableError) as raised:
        await capped.chat_job(chat(max_completion_tokens=9), "c")
    assert raised.value.param == "max_completion_tokens"


async def test_a_base_model_chat_gets_a_repetition_penalty_only_when_none_was_sent(
    service: OpenAIServing, engine: FakeEngine
) -> None:
    """Most clients send no penalty, and a base model left alone repeats itself."""

    async def repeat_penalty(request: ChatCompletionRequest) -> float:
        return (await service.chat_job(request, "c")).choices[0].repeat_penalty

    assert await repeat_penalty(chat()) == BASE_CHAT_REPEAT_PENALTY > 1.0
    assert await repeat_penalty(chat(n=2)) == BASE_CHAT_REPEAT_PENALTY
    # Any penalty the client sent, a zero too, is its choice: none is added.
    assert await repeat_penalty(chat(presence_penalty=0)) == 1.0
    assert await repeat_penalty(chat(frequency_penalty=0.5)) == 1.0
    completion = await service.completion_job(CompletionRequest(prompt="a b"), "c")
    assert completion.choices[0].repeat_penalty == 1.0  # text completion is left as it is
    engine.chat_template = True  # an instruction-tuned GGUF with its template
    assert await repeat_penalty(chat()) == 1.0


async def test_top_logprobs_without_logprobs_is_refused_before_tokenizing(
    service: OpenAIServing, engine: FakeEngine
) -> None:
    """It was refused after the whole prompt was tokenized (up to the 1 MB body's worth)."""
    with pytest.raises(InvalidRequestError, match="top_logprobs needs logprobs") as refused:
        await service.chat_job(
            chat(top_logprobs=2, messages=[{"role": "user", "content": "a"}]), "c"
        )
    assert refused.value.param == "top_logprobs"
    assert engine.tokenized == 0

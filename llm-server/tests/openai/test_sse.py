from __future__ import annotations

import json

import pytest

from llm_server.openai.protocol import ChatChunkChoice, ChatCompletionChunk, ChatDelta
from llm_server.openai.sse import TokenChunks


def chunk(index: int, text: str) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id="chatcmpl-1",
        created=1,
        model="m",
        choices=[ChatChunkChoice(index=index, delta=ChatDelta(content=text))],
    )


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        ' "quoted" ',
        "back\\slash",
        "new\nline\ttab",
        "\x00\x1f control",
        "é 漢字 🙂",
        "\u2028\u2029",
        "</script>",
        "",
    ],
)
def test_the_fast_path_is_byte_for_byte_what_pydantic_writes(text: str) -> None:
    tokens = TokenChunks(chunk)
    for index in (0, 3):
        fast = tokens.encode(index, text)
        assert fast == chunk(index, text).model_dump_json().encode()
        assert json.loads(fast)["choices"][0]["delta"]["content"] == text

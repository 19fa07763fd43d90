"""The client-side stream reader: events split anywhere, tokens counted from logprobs."""

from __future__ import annotations

import json

from adversarial.sse import SseParser, StreamResult, apply_event


def chat_chunk(text: str, tokens: int) -> str:
    logprobs = {"content": [{"token": "t", "logprob": -0.1}] * tokens}
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}, "logprobs": logprobs}]})


def test_parser_joins_events_split_across_reads() -> None:
    parser = SseParser()
    stream = f"data: {chat_chunk('a', 1)}\n\n: keep-alive\n\ndata: [DONE]\n\n"
    events = [e for i in range(0, len(stream), 7) for e in parser.feed(stream[i : i + 7])]
    assert events == [chat_chunk("a", 1), "[DONE]"]


def test_parser_accepts_crlf_and_multiline_data() -> None:
    assert SseParser().feed("data: a\r\ndata: b\r\n\r\n") == ["a\nb"]


def test_tokens_counted_from_chat_and_completion_logprobs() -> None:
    result = StreamResult(status=200)
    apply_event(result, chat_chunk("Hel", 1))
    apply_event(result, chat_chunk("", 1))  # a token that decodes to nothing still counts
    completion = {"choices": [{"text": "lo", "logprobs": {"tokens": ["l", "o"]}}]}
    apply_event(result, json.dumps(completion))
    apply_event(result, json.dumps({"choices": [], "usage": {"completion_tokens": 4}}))
    apply_event(result, "[DONE]")
    assert (result.tokens, result.text, result.done) == (4, "Hello", True)
    assert result.usage == {"completion_tokens": 4}
    assert result.complete


def test_in_band_error_is_not_complete() -> None:
    result = StreamResult(status=200)
    apply_event(result, chat_chunk("a", 1))
    apply_event(result, json.dumps({"error": {"message": "upstream died", "code": "x"}}))
    assert result.error == {"message": "upstream died", "code": "x"}
    assert not result.complete

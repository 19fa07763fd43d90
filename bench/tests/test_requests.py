"""Pure parts of the model-server harness: request shapes, stream reading, the token-count
check, the plan and the round order."""

from __future__ import annotations

import math

import pytest

from bench.checks import TokenFacts, check_record, token_problem
from bench.client import RequestRecord
from bench.metrics import check_tokens, clean_json, summarize
from bench.plan import build_plan
from bench.runner import batched_key, batched_plan, target_order, token_failures
from bench.shapes import SHAPES, StreamState, read_event, request_body

SDK_FIELDS = {"model", "messages", "max_tokens", "temperature", "stream", "stream_options", "seed"}


def test_sdk_request_is_what_an_openai_sdk_sends() -> None:
    body = request_body(SHAPES["sdk"], "hi", 64, 7, {})
    assert set(body) == SDK_FIELDS
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert SHAPES["sdk"].path == "/v1/chat/completions"


def test_tuned_adds_top_k_and_top_p_only() -> None:
    body = request_body(SHAPES["tuned"], "hi", 64, 7, {})
    assert set(body) - SDK_FIELDS == {"top_k", "top_p"}
    assert (body["top_k"], body["top_p"]) == (40, 0.95)


def test_completions_shapes_send_a_prompt_and_target_extras() -> None:
    body = request_body(SHAPES["sdk-completions"], "text", 8, 1, {"ignore_eos": True})
    assert body["prompt"] == "text" and "messages" not in body and "top_k" not in body
    assert body["ignore_eos"] is True
    assert SHAPES["completions"].path == "/v1/completions"
    assert request_body(SHAPES["completions"], "t", 8, 1, {})["top_k"] == 40
    with pytest.raises(TypeError):
        request_body(SHAPES["completions"], [{"role": "user", "content": "x"}], 8, 1, {})


def test_chat_shape_takes_a_whole_message_list() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert request_body(SHAPES["sdk"], messages, 8, 1, {})["messages"] == messages


def test_read_event_completions_chat_usage_and_timings() -> None:
    state = StreamState()
    assert not read_event(state, {"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    assert read_event(state, {"choices": [{"delta": {"content": "Hel"}}]})
    assert read_event(state, {"choices": [{"text": "lo"}]})
    assert not read_event(state, {"choices": [{"delta": {}, "finish_reason": "length"}]})
    usage = {"completion_tokens": 2, "prompt_tokens": 10, "prompt_tokens_details": {}}
    read_event(state, {"choices": [], "usage": usage})
    assert (state.text, state.content_events, state.finish_reason) == ("Hello", 2, "length")
    assert (state.completion_tokens, state.prompt_tokens, state.cached_tokens) == (2, 10, None)
    read_event(state, {"choices": [], "timings": {"cache_n": 6, "prompt_n": 4}})
    assert state.cached_tokens == 6


def test_usage_cached_tokens_win_over_timings() -> None:
    state = StreamState()
    usage = {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 8}}
    read_event(state, {"usage": usage, "timings": {"cache_n": 3, "prompt_n": 7}})
    assert state.cached_tokens == 8


def test_timings_alone_give_prompt_tokens() -> None:
    state = StreamState()
    read_event(state, {"choices": [], "timings": {"cache_n": 3, "prompt_n": 7}})
    assert (state.cached_tokens, state.prompt_tokens) == (3, 10)


def test_in_band_error_is_kept() -> None:
    state = StreamState()
    assert not read_event(state, {"error": {"message": "boom"}})
    assert state.error is not None and "boom" in state.error


def facts(**kw: object) -> TokenFacts:
    base: dict[str, object] = {
        "max_tokens": 64,
        "finish_reason": "length",
        "usage_completion_tokens": 64,
        "content_events": 60,
        "text_tokens": 58,
    }
    base.update(kw)
    return TokenFacts(**base)  # type: ignore[arg-type]


def test_token_check_accepts_consistent_answers() -> None:
    assert token_problem(facts()) is None
    assert token_problem(facts(text_tokens=70)) is None  # a re-tokenization may split more
    assert token_problem(facts(usage_completion_tokens=None)) is None  # no usage: length
    short = facts(finish_reason="stop", usage_completion_tokens=9, content_events=7, text_tokens=8)
    assert token_problem(short) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"usage_completion_tokens": 80}, "more than max_tokens"),
        ({"usage_completion_tokens": 63}, "finish_reason length"),
        ({"content_events": 65}, "text events"),
        ({"text_tokens": 90}, "re-tokenizes to 90"),
        ({"text_tokens": 10}, "usage says 64"),
        ({"usage_completion_tokens": None, "text_tokens": 10}, "re-tokenizes to 10"),
    ],
)
def test_token_check_names_each_mismatch(change: dict[str, object], words: str) -> None:
    problem = token_problem(facts(**change))
    assert problem is not None and words in problem


def test_check_record_tokenizes_the_text() -> None:
    words = lambda text: len(text.split())  # noqa: E731
    assert check_record(4, "length", 4, 4, "a b c d", words) is None
    assert check_record(4, "length", 4, 4, "", words) is None  # n < 16: no lower bound
    problem = check_record(64, "length", 64, 3, "one two three", words)
    assert problem is not None


def record(ttft: float, tokens: int, *, text: str = "x", usage: int | None = None) -> RequestRecord:
    r = RequestRecord(started=10.0, prompt_length=32, max_tokens=tokens)
    r.events = [10.0 + ttft + 0.01 * i for i in range(tokens)]
    r.finished = r.events[-1]
    r.state = StreamState(text=text, content_events=tokens, finish_reason="length")
    r.state.completion_tokens = usage
    return r


def test_summarize_counts_mismatches_and_uses_usage() -> None:
    good, bad = record(0.1, 20, usage=20), record(0.2, 20, usage=20)
    good.state.text = " ".join(["w"] * 20)
    check_tokens([good, bad], lambda text: len(text.split()))
    assert good.token_problem is None and bad.token_problem is not None
    figures = summarize([good, bad])
    assert figures["token_mismatches"] == 1 and "first_token_mismatch" in figures
    assert figures["output_tokens"] == 40 and figures["usage_missing"] == 0


def test_token_failures_names_the_failing_measurements() -> None:
    rows = [
        {"workload": "w", "target": "a", "round": 0, "token_mismatches": 0},
        {
            "workload": "w",
            "target": "b",
            "round": 1,
            "token_mismatches": 2,
            "first_token_mismatch": "x",
        },
    ]
    (line,) = token_failures(rows)
    assert line.startswith("w b round 2: 2 mismatched")


def test_target_order_alternates_between_rounds() -> None:
    targets = ["a", "b", "c"]
    assert target_order(targets, 0) == targets
    assert target_order(targets, 1) == ["c", "b", "a"]
    assert target_order(targets, 2) == targets


def test_plan_puts_the_tuned_request_beside_the_default_at_its_levels() -> None:
    plan = build_plan([1, 8, 16], [32, 512], [1], 64, [1.5], 8, ("sdk", "tuned"), (1, 16))
    closed = [(w.concurrency, w.prompt, w.shape) for w in plan if w.kind == "closed"]
    assert closed == [
        (1, 32, "sdk"),
        (1, 32, "tuned"),
        (8, 32, "sdk"),
        (16, 32, "sdk"),
        (16, 32, "tuned"),
        (1, 512, "sdk"),
    ]
    assert [w.shape for w in plan if w.kind == "poisson"] == ["sdk"]
    assert [w.shape for w in plan if w.kind == "interference"] == ["completions"]
    assert len({w.key for w in plan}) == len(plan)


def test_clean_json_replaces_nan() -> None:
    assert clean_json({"a": [math.nan, 1.0], 2: math.nan}) == {"a": [None, 1.0], "2": None}


def test_batched_bench_runs_at_every_prompt_length_the_closed_loops_ran() -> None:
    plan = build_plan([1, 8, 16], [32, 512, 1500], [1, 8], 64, [1.5], 8, ("sdk", "tuned"), (1,))
    assert batched_plan(plan) == {32: [1, 8, 16], 512: [1, 8], 1500: [1, 8]}
    assert batched_key(512, 8) == "512:8"

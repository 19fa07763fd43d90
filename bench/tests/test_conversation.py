"""Pure parts of the conversation workload: the script, the transcript, the per-turn figures."""

from __future__ import annotations

import math

import pytest

from bench.client import RequestRecord
from bench.conv_stats import Turn, summarize_conversations
from bench.conv_workload import (
    ConversationSpec,
    build_script,
    chat_messages,
    think_times,
    transcript,
)
from bench.shapes import StreamState


class Words:
    """A tokenizer stand-in: one token per word of a fixed vocabulary."""

    def __init__(self) -> None:
        self.vocab = [f"w{i}" for i in range(5000)]

    def tokenize(self, text: str) -> list[int]:
        return [int(w[1:]) for w in text.split()]

    def detokenize(self, tokens: list[int]) -> str:
        return " ".join(self.vocab[t] for t in tokens)


CORPUS = list(range(5000))


def test_defaults_grow_histories_past_1500_tokens_with_more_users_than_slots() -> None:
    spec = ConversationSpec()
    assert spec.turns == 6
    assert spec.last_prompt_tokens() > 1500
    assert spec.users > spec.slots
    assert spec.per_sequence() % 256 == 0
    assert spec.per_sequence() >= spec.last_prompt_tokens() + spec.answer_tokens


def test_script_is_seeded_shared_system_prompt_distinct_users() -> None:
    spec = ConversationSpec(users=5, turns=3, system_tokens=20, user_tokens=10, seed=3)
    a = build_script(spec, CORPUS, Words())
    assert a == build_script(spec, CORPUS, Words())
    assert a != build_script(
        ConversationSpec(users=5, turns=3, system_tokens=20, seed=4), CORPUS, Words()
    )
    assert len(a.system.split()) == 20
    assert len(a.users) == 5
    assert all(len(u.messages) == 3 and len(u.thinks) == 2 for u in a.users)
    firsts = [u.messages[0] for u in a.users]
    assert len(set(firsts)) == 5 and all(
        f.startswith(f"[user {i} of run 3]") for i, f in enumerate(firsts)
    )
    arrivals = [u.arrival for u in a.users]
    assert arrivals == sorted(arrivals) and arrivals[0] == 0 and arrivals[-1] < spec.arrival_spread
    assert all(a.system not in m for u in a.users for m in u.messages)


def test_script_refuses_empty_workloads() -> None:
    with pytest.raises(ValueError):
        build_script(ConversationSpec(users=0), CORPUS, Words())
    with pytest.raises(ValueError):
        build_script(ConversationSpec(users=1), [], Words())


def test_think_times_are_capped_and_zero_mean_means_none() -> None:
    import random

    times = think_times(random.Random(1), 1000, 2.0)  # noqa: S311
    assert len(times) == 1000 and max(times) <= 8.0 and min(times) >= 0
    assert 1.5 < sum(times) / len(times) < 2.5
    assert think_times(random.Random(1), 3, 0) == (0.0, 0.0, 0.0)  # noqa: S311


def test_each_turn_prompt_is_a_prefix_of_the_next() -> None:
    messages, answers = ["q1", "q2", "q3"], [" a1", " a2"]
    prompts = [transcript("S", messages[: k + 1], answers[:k]) for k in range(3)]
    assert prompts[0] == "S\n\nUser: q1\nAssistant:"
    assert (
        prompts[2] == "S\n\nUser: q1\nAssistant: a1\nUser: q2\nAssistant: a2\nUser: q3\nAssistant:"
    )
    assert prompts[1].startswith(prompts[0]) and prompts[2].startswith(prompts[1])
    with pytest.raises(ValueError):
        transcript("S", ["q1"], ["a1"])


def test_chat_messages_alternate_after_the_system_prompt() -> None:
    out = chat_messages("S", ["q1", "q2"], ["a1"])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[-1]["content"] == "q2"
    with pytest.raises(ValueError):
        chat_messages("S", ["q1"], ["a1"])


def turn(user: int, k: int, ttft: float, prompt: int, cached: int | None, ok: bool = True) -> Turn:
    r = RequestRecord(started=100.0 * user + k, prompt_length=prompt, max_tokens=4)
    r.state = StreamState(text="a b c d", content_events=4, finish_reason="length")
    r.state.completion_tokens, r.state.prompt_tokens, r.state.cached_tokens = 4, prompt, cached
    if ok:
        r.events = [r.started + ttft + 0.1 * i for i in range(4)]
        r.finished = r.events[-1]
    else:
        r.error = "HTTP 500"
        r.finished = r.started + 1
    return Turn(user, k, r)


def test_per_turn_figures_and_reuse() -> None:
    turns = [
        turn(0, 1, 0.5, 100, 0),
        turn(1, 1, 0.7, 100, 90),
        turn(0, 2, 0.2, 300, 200),
        turn(1, 2, 0.4, 300, None),  # a server that reports no reuse
        turn(2, 2, 0.0, 300, 0, ok=False),
    ]
    out = summarize_conversations(turns, 2)
    assert out["answers"] == 4 and out["errors"] == 1 and out["first_error"] == "HTTP 500"
    assert out["turn1_ttft_p50_ms"] == pytest.approx(700)  # nearest rank of two: the upper
    assert out["turn1_ttft_p99_ms"] == pytest.approx(700)
    assert out["turn1_reused_tokens"] == 90 and out["turn1_recomputed_tokens"] == 110
    assert out["turn2_reuse_reported"] == 1 and out["turn2_reused_fraction"] == pytest.approx(2 / 3)
    assert out["turn2_errors"] == 1
    assert out["later_ttft_p99_ms"] == pytest.approx(400)
    assert out["turn2_decode_tokens_per_s"] == pytest.approx(10)
    assert out["output_tokens"] == 16 and out["token_mismatches"] == 0


def test_no_reuse_reported_is_nan_not_zero() -> None:
    out = summarize_conversations([turn(0, 1, 0.1, 50, None)], 1)
    assert out["turn1_reuse_reported"] == 0 and math.isnan(out["turn1_reused_fraction"])
    assert math.isnan(out["turn1_reused_tokens"]) and math.isnan(out["turn1_recomputed_tokens"])

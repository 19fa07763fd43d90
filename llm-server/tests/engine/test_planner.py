"""The step planner on its own: no model, no llama.cpp, just sequences and a budget."""

from __future__ import annotations

import subprocess
import sys

from llm_server.engine.drafts import index_for
from llm_server.engine.planner import PlanLimits, StepPlan, StepPlanner
from llm_server.engine.sequence import Sequence
from llm_server.engine.strategy import GENERATE, SCORE
from llm_server.engine.types import SamplingParams

LIMITS = PlanLimits(
    step_tokens=512, ubatch_tokens=128, prefill_chunk_tokens=32, batch_multiple=4, drafting=False
)


def generating(prompt_tokens: int, decoded: int | None = None, max_tokens: int = 64) -> Sequence:
    """A generation whose prompt is read up to `decoded` (all of it and decoding: None)."""
    prompt = list(range(1, prompt_tokens + 1))
    sequence = Sequence(
        GENERATE, prompt, lambda _: None, "c", params=SamplingParams(max_tokens=max_tokens)
    )
    sequence.n_past = prompt_tokens if decoded is None else decoded
    if decoded is None:
        sequence.pending_token = 7
    return sequence


def scoring(tokens: int, score_from: int = 1) -> Sequence:
    return Sequence(SCORE, list(range(tokens)), lambda _: None, "c", score_from=score_from)


def plan(running: list[Sequence], limits: PlanLimits = LIMITS) -> StepPlan:
    return StepPlanner(limits).plan(running)


def test_each_decoding_sequence_gets_one_token_and_nothing_more() -> None:
    streams = [generating(10) for _ in range(4)]
    step = plan(streams)
    assert step.decoding == streams
    assert step.prefills == []
    assert step.drafts == []
    assert step.tokens == 4


def test_a_lone_prompt_is_read_whole_with_logits_for_its_last_token() -> None:
    sequence = generating(300, decoded=0)
    [prefill] = plan([sequence]).prefills
    assert (prefill.start, prefill.end) == (0, 300)
    assert (prefill.logits_from, prefill.logits_to) == (299, 300)


def test_a_long_prompt_is_read_a_chunk_a_step_while_streams_decode() -> None:
    streams = [generating(10) for _ in range(3)]
    long = generating(400, decoded=64)
    step = plan([*streams, long])
    [prefill] = step.prefills
    assert (prefill.start, prefill.end) == (64, 64 + 32)
    assert step.tokens == 3 + 32


def test_long_prompts_at_least_half_as_many_as_streams_are_read_in_whole_pieces() -> None:
    streams = [generating(10) for _ in range(2)]
    step = plan([*streams, generating(400, decoded=0)])
    assert [(p.start, p.end) for p in step.prefills] == [(0, 128)]  # one llama.cpp piece


def test_a_short_prompt_is_read_whole_while_streams_decode() -> None:
    streams = [generating(10) for _ in range(3)]
    step = plan([*streams, generating(50, decoded=0)])
    assert [(p.start, p.end) for p in step.prefills] == [(0, 50)]


def test_the_step_budget_bounds_what_is_read() -> None:
    prompts = [generating(400, decoded=0) for _ in range(2)]
    step = plan(prompts)
    assert [(p.start, p.end) for p in step.prefills] == [(0, 400), (0, 112)]
    assert step.tokens == 512


def test_a_scored_text_gets_logits_from_the_first_scored_position_within_the_row_cap() -> None:
    scored = scoring(100, score_from=10)
    [prefill] = plan([scored]).prefills
    # Positions 9..98 predict tokens 10..99; at most 32 rows with logits a step.
    assert (prefill.logits_from, prefill.logits_to) == (9, 99)
    assert (prefill.start, prefill.end) == (0, 9 + 32)
    scored.n_past = 41
    [prefill] = plan([scored]).prefills
    assert (prefill.start, prefill.end) == (41, 73)


def test_scored_texts_share_the_row_cap_of_a_step() -> None:
    first, second = scoring(30), scoring(30)
    step = plan([first, second])
    # 29 rows for the first (positions 0..28), 3 left for the second.
    assert [(p.start, p.end) for p in step.prefills] == [(0, 30), (0, 3)]


def test_a_ragged_step_is_padded_with_guesses_when_drafting() -> None:
    limits = PlanLimits(512, 128, 32, batch_multiple=4, drafting=True)
    streams = [generating(12) for _ in range(5)]
    for sequence in streams:
        # Repeating text: the last tokens were seen before, so there is something to guess.
        sequence.prompt = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]
        sequence.drafter = index_for(sequence.prompt)
    step = plan(streams, limits)
    assert sum(len(d.guesses) for d in step.drafts) == 3  # 5 rows padded to 8
    assert step.tokens == 8
    for draft in step.drafts:
        assert draft.position == draft.sequence.n_past + 1
    assert plan(streams).drafts == []  # not when drafting is off
    assert plan(streams[:4], limits).drafts == []  # nor when the rows are whole tiles


def test_a_scored_text_is_never_guessed_for() -> None:
    limits = PlanLimits(512, 128, 32, batch_multiple=4, drafting=True)
    step = plan([scoring(3), scoring(3), scoring(3)], limits)
    assert step.drafts == []


def test_the_planner_needs_no_llama_cpp() -> None:
    code = "import sys, llm_server.engine.planner; assert 'llama_cpp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

from __future__ import annotations

from llm_server.engine.drafts import (
    PROMPT_WINDOW,
    Candidate,
    NgramIndex,
    assign,
    index_for,
    padding,
)


def test_the_longest_matching_suffix_proposes_what_followed_it_last() -> None:
    index = NgramIndex([5, 6, 7, 1, 9, 6, 7, 2, 8, 6, 7])
    # "6 7" was followed by 1 and later by 2; "9 6 7" and "8 6 7" don't repeat: the most recent
    # occurrence of the longest repeated suffix wins.
    assert index.propose(3) == ([2, 8, 6], 2)
    index.append(2)  # "6 7 2" occurred before, followed by 8
    assert index.propose(2) == ([8, 6], 3)


def test_nothing_is_proposed_without_a_repeat() -> None:
    assert NgramIndex([1, 2, 3]).propose(4) == ([], 0)
    assert NgramIndex().propose(4) == ([], 0)


def test_a_proposal_stops_at_the_known_text() -> None:
    index = NgramIndex([1, 2, 1])
    assert index.propose(5) == ([2, 1], 1)


def test_a_long_prompt_is_indexed_from_its_end() -> None:
    prompt = [5000, 5001, *range(PROMPT_WINDOW), 5000]
    index = index_for(prompt)
    assert len(index) == PROMPT_WINDOW
    assert index.propose(1) == ([], 0)  # 5000 -> 5001 lies before the window


def test_padding_rounds_up_to_the_multiple_from_one_below_it() -> None:
    assert [padding(n, 4, 100) for n in range(1, 10)] == [0, 0, 1, 0, 3, 2, 1, 0, 3]
    assert padding(13, 4, 2) == 2  # no more than the step has room for
    assert padding(13, 1, 100) == 0  # off


def test_guesses_go_to_the_strongest_matches_one_per_sequence_per_round() -> None:
    candidates = [
        Candidate(key=0, guesses=[1, 2, 3], strength=1),
        Candidate(key=1, guesses=[4, 5], strength=4),
        Candidate(key=2, guesses=[], strength=0),
        Candidate(key=3, guesses=[6], strength=2),
    ]
    assert assign(candidates, 2) == {1: [4], 3: [6]}
    assert assign(candidates, 5) == {1: [4, 5], 3: [6], 0: [1, 2]}
    # More room than guesses: every guess is placed once.
    assert assign(candidates, 10) == {1: [4, 5], 3: [6], 0: [1, 2, 3]}

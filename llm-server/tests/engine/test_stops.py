from __future__ import annotations

from llm_server.engine.stops import StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = ""
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_a_stop_split_across_tokens_is_found_and_not_emitted() -> None:
    assert feed_all(StopMatcher(("###",)), ["Hello ", "#", "#", "# tail"]) == ("Hello ", True)


def test_text_that_only_looks_like_a_stop_is_released() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("the EN") == ("the ", False)
    assert matcher.feed("D") == ("", True)
    other = StopMatcher(("END",))
    assert other.feed("the EN") == ("the ", False)
    assert other.feed("VOY") == ("ENVOY", False)


def test_the_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(("b", "cd")), ["a c", "d b"]) == ("a ", True)


def test_no_stops_passes_everything_through() -> None:
    assert StopMatcher(()).feed("anything") == ("anything", False)


def test_flush_returns_held_text() -> None:
    matcher = StopMatcher(("<end>",))
    assert matcher.feed("x <en") == ("x ", False)
    assert matcher.flush() == "<en"

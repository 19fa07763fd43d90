"""PENDING selection, and when the summary fails the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adversarial import registry
from adversarial.registry import Case, Context, Outcome, Skip, Tally, run_cases, select, summary
from adversarial.stack import Stack


def passes(_: Context) -> None:
    return None


def make(name: str, fn: Callable[[Context], None] = passes) -> Case:
    return Case("auth", name, "expected", fn)


def context() -> Context:
    def no_stack() -> Stack:
        raise AssertionError("no stack in unit tests")

    return Context(Tally(), no_stack)


def test_pending_cases_are_held_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PENDING", {"auth/later": 5})
    cases = [make("now"), make("later")]
    run, held = select(cases, pending=False, only=None)
    assert [c.name for c in run] == ["now"] and [c.name for c in held] == ["later"]
    run, held = select(cases, pending=True, only=None)
    assert [c.name for c in run] == ["now", "later"] and held == []
    run, _ = select(cases, pending=True, only=["auth/lat"])
    assert [c.name for c in run] == ["later"]


def test_outcomes_failures_and_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PENDING", {"auth/held": 15})

    def fails(_: Context) -> None:
        raise AssertionError("504 expected, got 500")

    def skips(_: Context) -> None:
        raise Skip("no redis")

    outcomes = run_cases(
        [make("ok"), make("bad", fails), make("skip", skips)],
        [make("held")],
        context(),
        log=lambda _: None,
    )
    status = {o.case.name: o.status for o in outcomes}
    assert status == {"held": "pending", "ok": "passed", "bad": "failed", "skip": "skipped"}
    text, ok = summary(outcomes, Tally(), ci=False)
    assert not ok
    assert "pending  auth/held (issue 12 item 15 not landed)" in text
    assert "FAILED   auth/bad: AssertionError: 504 expected, got 500" in text
    assert text.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"


def test_skip_fails_only_under_ci() -> None:
    outcomes = [Outcome(make("ok"), "passed"), Outcome(make("s"), "skipped", detail="why")]
    assert summary(outcomes, Tally(), ci=False)[1]
    assert not summary(outcomes, Tally(), ci=True)[1]


@pytest.mark.parametrize("field", ["requests_lost", "double_billed", "client_error_5xx"])
def test_any_lost_double_billed_or_5xx_fails_the_run(field: str) -> None:
    tally = Tally()
    setattr(tally, field, 1)
    assert not summary([Outcome(make("ok"), "passed")], tally, ci=False)[1]


def test_a_promoted_pending_case_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PENDING", {"auth/fixed": 6})
    text, ok = summary([Outcome(make("fixed"), "passed")], Tally(), ci=False)
    assert ok and "now passes (promote: remove from PENDING): auth/fixed" in text


def test_every_pending_key_names_a_registered_case() -> None:
    import adversarial.cases  # noqa: F401 - registers the cases

    keys = {c.key for c in registry.CASES}
    assert set(registry.PENDING) <= keys
    assert all(0 <= item <= 18 for item in registry.PENDING.values())

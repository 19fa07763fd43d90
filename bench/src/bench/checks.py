"""Every completion's token count checked against its text and the server's `usage`: a run
with a mismatch fails (figures computed from a count the server did not earn are not figures).

The text a client receives is re-tokenized with the model's own vocabulary. That count is not
exactly the number of tokens drawn — a tokenizer's canonical split of a text can take a few
more or fewer pieces than the sampler's draws, and tokens such as an end-of-generation or a
stop string's are counted but send no text — so the bounds are loose on purpose: they catch a
server claiming tokens it never streamed, or streaming more than it claims, not a merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenFacts:
    max_tokens: int
    finish_reason: str | None
    usage_completion_tokens: int | None  # None: the server sent no usage
    content_events: int  # streamed events that carried text
    text_tokens: int  # the streamed text, re-tokenized


def token_problem(facts: TokenFacts) -> str | None:
    """A description of the mismatch, or None when the counts agree."""
    n = facts.usage_completion_tokens
    if n is None:
        # No usage (a server that ignores stream_options): check the text against what a
        # "length" finish implies.
        if facts.finish_reason != "length":
            return None
        n = facts.max_tokens
    if n > facts.max_tokens:
        return f"usage says {n} tokens, more than max_tokens {facts.max_tokens}"
    if facts.finish_reason == "length" and n != facts.max_tokens:
        return f"finish_reason length but usage says {n} of max_tokens {facts.max_tokens}"
    if facts.content_events > n:
        return f"{facts.content_events} text events for {n} tokens"
    if facts.text_tokens > n + max(4, n // 4):
        return f"the text re-tokenizes to {facts.text_tokens} tokens, usage says {n}"
    if n >= 16 and facts.text_tokens < n // 4:
        return f"usage says {n} tokens but the text re-tokenizes to {facts.text_tokens}"
    return None


def check_record(
    max_tokens: int,
    finish_reason: str | None,
    usage_completion_tokens: int | None,
    content_events: int,
    text: str,
    count_tokens: Callable[[str], int],
) -> str | None:
    """`token_problem` for one streamed answer, re-tokenizing its text with `count_tokens`."""
    return token_problem(
        TokenFacts(
            max_tokens,
            finish_reason,
            usage_completion_tokens,
            content_events,
            count_tokens(text) if text else 0,
        )
    )

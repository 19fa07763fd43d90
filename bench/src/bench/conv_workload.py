"""The conversation workload's script, made before any request: who arrives when, how long each
user thinks between turns, and the text of every system prompt and user message.

U simulated users share one system prompt; each then holds a conversation of `turns` turns,
every turn resending the whole history (the system prompt, every earlier user message and
answer) plus a new user message, so that the history grows past 1,500 tokens by the last turn
at the defaults. Users arrive spread over `arrival_spread` seconds and think between turns
(exponential, mean `think_mean`), so that more users hold a conversation than there are
decode slots: a server must keep (or restore) histories of users who are not decoding.

Everything here is pure and seeded: every target of one run gets the same script.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

MARKUP_TOKENS = 6  # "User: " … "\nAssistant:" and the newline after an answer, about


class TextTokenizer(Protocol):
    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...


@dataclass(frozen=True)
class ConversationSpec:
    users: int = 32
    turns: int = 6
    slots: int = 16  # decode slots every server gets (llama-server's -np)
    system_tokens: int = 512
    user_tokens: int = 128
    answer_tokens: int = 64
    think_mean: float = 4.0  # seconds between an answer and the next message (mean)
    arrival_spread: float = 16.0  # users arrive evenly over this many seconds
    seed: int = 0

    def last_prompt_tokens(self) -> int:
        """The last turn's prompt, about: the system prompt, every user message, every
        earlier answer and their markup."""
        turns = self.turns
        return (
            self.system_tokens
            + turns * (self.user_tokens + MARKUP_TOKENS)
            + (turns - 1) * (self.answer_tokens + 1)
        )

    def per_sequence(self, margin: int = 128) -> int:
        """Context one sequence may need (prompt + answer + slack), rounded up to 256."""
        longest = self.last_prompt_tokens() + self.answer_tokens + margin
        return -(-longest // 256) * 256


@dataclass(frozen=True)
class UserScript:
    user: int
    arrival: float  # seconds after the run starts
    messages: tuple[str, ...]  # one per turn
    thinks: tuple[float, ...]  # seconds after each answer but the last


@dataclass(frozen=True)
class Script:
    spec: ConversationSpec
    system: str
    users: tuple[UserScript, ...] = field(default_factory=tuple)


def think_times(rng: random.Random, count: int, mean: float) -> tuple[float, ...]:
    """Exponential think times, capped at 4× the mean (no user leaves for minutes)."""
    if mean <= 0:
        return (0.0,) * count
    return tuple(min(4 * mean, rng.expovariate(1 / mean)) for _ in range(count))


def cut(tokens: list[int], start: int, length: int) -> list[int]:
    """`length` tokens of `tokens` from `start`, wrapping around."""
    if not tokens:
        raise ValueError("no corpus tokens")
    return [tokens[(start + i) % len(tokens)] for i in range(length)]


def build_script(spec: ConversationSpec, corpus_tokens: list[int], tok: TextTokenizer) -> Script:
    """The system prompt is the corpus's first `system_tokens`; every user message is cut at
    its own seeded offset, and each user's first message opens with a tag naming the user
    and the seed, so that no two histories share more than the system prompt."""
    if spec.users < 1 or spec.turns < 1:
        raise ValueError("users and turns must be at least 1")
    rng = random.Random(spec.seed)  # noqa: S311  # a workload, not a secret
    system = tok.detokenize(cut(corpus_tokens, 0, spec.system_tokens)).strip()
    users = []
    for u in range(spec.users):
        messages = []
        for t in range(spec.turns):
            start = rng.randrange(
                spec.system_tokens, max(spec.system_tokens + 1, len(corpus_tokens))
            )
            text = tok.detokenize(cut(corpus_tokens, start, spec.user_tokens)).strip()
            if t == 0:
                text = f"[user {u} of run {spec.seed}] {text}"
            messages.append(text)
        arrival = spec.arrival_spread * u / spec.users
        users.append(
            UserScript(
                u, arrival, tuple(messages), think_times(rng, spec.turns - 1, spec.think_mean)
            )
        )
    return Script(spec, system, tuple(users))


def transcript(system: str, messages: list[str], answers: list[str]) -> str:
    """The prompt of the turn after `answers` (one fewer than `messages`): the plain transcript
    llm-server writes for a base model's chat, so every target reads the same text. Each turn's
    prompt is a prefix of the next one's."""
    if len(answers) != len(messages) - 1:
        raise ValueError("one answer per message but the last")
    parts = [system, "\n\n"]
    for i, message in enumerate(messages):
        parts += ["User: ", message, "\nAssistant:"]
        if i < len(answers):
            parts += [answers[i], "\n"]
    return "".join(parts)


def chat_messages(system: str, messages: list[str], answers: list[str]) -> list[dict[str, str]]:
    """The same history as an OpenAI `messages` list."""
    if len(answers) != len(messages) - 1:
        raise ValueError("one answer per message but the last")
    out = [{"role": "system", "content": system}]
    for i, message in enumerate(messages):
        out.append({"role": "user", "content": message})
        if i < len(answers):
            out.append({"role": "assistant", "content": answers[i]})
    return out

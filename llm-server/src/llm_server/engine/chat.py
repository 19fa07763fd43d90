"""Turning a chat into a prompt: the GGUF's own template, or Gemma's turn format.

A prompt is a list of segments: the template's own markup, whose `<start_of_turn>`-like text
is read as control tokens, and the messages' text, which is always read as plain text. A
user who writes `<end_of_turn>` therefore cannot close their turn and write the model's.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llm_server.engine.model import LoadedModel

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Segment:
    """A piece of a prompt; `markup` pieces may hold control tokens, others never do."""

    text: str
    markup: bool


class ChatTemplateError(ValueError):
    """The model's chat template refused these messages."""


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


class ChatFormatter:
    """Renders messages with the model's template (sandboxed Jinja) or the Gemma fallback."""

    def __init__(self, template: str | None, bos: str, eos: str) -> None:
        self._bos, self._eos = bos, eos
        self._template = None
        if template is not None:
            environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            environment.globals["raise_exception"] = _raise
            self._template = environment.from_string(template)

    @classmethod
    def for_model(cls, model: LoadedModel) -> ChatFormatter:
        return cls(model.chat_template(), model.token_text(model.bos), model.token_text(model.eos))

    @property
    def uses_model_template(self) -> bool:
        return self._template is not None

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Stops that end an assistant turn even when the model does not emit its EOG token."""
        return () if self._template is not None else ("<end_of_turn>", "<start_of_turn>")

    def render(self, messages: list[Message]) -> list[Segment]:
        """The prompt for `messages`, ending by opening the assistant's turn."""
        if self._template is None:
            return gemma_segments(messages)
        # The template sees a marker in place of each message's text (unguessable: a message
        # cannot forge another's), so that what it writes around them is told apart.
        nonce = secrets.token_hex(8)
        context: dict[str, Any] = {
            "messages": [
                {"role": m.role, "content": f"\ue000{nonce}:{i}\ue001"}
                for i, m in enumerate(messages)
            ],
            "add_generation_prompt": True,
            "bos_token": self._bos,
            "eos_token": self._eos,
        }
        try:
            rendered = self._template.render(**context)
        except TemplateError as exc:
            raise ChatTemplateError(f"the model's chat template failed: {exc}") from None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise ChatTemplateError(f"the model's chat template failed: {exc}") from None
        segments: list[Segment] = []
        pieces = re.split(f"\ue000{nonce}:(\\d+)\ue001", rendered)
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                segments.append(Segment(piece, markup=True))
            else:
                segments.append(Segment(messages[int(piece)].content, markup=False))
        return segments


def gemma_segments(messages: list[Message]) -> list[Segment]:
    """Gemma's turn format. Gemma has no system role: the system text opens the first user turn.

    The tokenizer adds `<bos>`; the prompt ends by opening the model's turn.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    segments: list[Segment] = []

    def turn(role: str, content: str) -> None:
        segments.append(Segment(f"<start_of_turn>{role}\n", markup=True))
        segments.append(Segment(content, markup=False))
        segments.append(Segment("<end_of_turn>\n", markup=True))

    for message in messages:
        if message.role == "system":
            continue
        content = message.content
        if system and message.role == "user":
            content, system = f"{system}\n\n{content}", ""
        turn("model" if message.role == "assistant" else "user", content)
    if system:
        turn("user", system)
    segments.append(Segment("<start_of_turn>model\n", markup=True))
    return segments


class Tokenizer(Protocol):
    def __call__(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]: ...


def tokenize_segments(tokenize: Tokenizer, segments: list[Segment]) -> list[int]:
    """The prompt's tokens: control tokens are parsed in markup only, never in message text.
    The first piece gets the tokenizer's own `<bos>`."""
    merged: list[Segment] = []
    for segment in segments:
        if merged and merged[-1].markup == segment.markup:
            merged[-1] = Segment(merged[-1].text + segment.text, segment.markup)
        elif segment.text:
            merged.append(segment)
    tokens: list[int] = []
    for index, segment in enumerate(merged or [Segment("", markup=True)]):
        tokens += tokenize(segment.text, add_special=index == 0, parse_special=segment.markup)
    return tokens

"""Turning a chat into a prompt: the GGUF's own template, or a plain transcript.

A prompt is a list of segments: the template's own markup, whose `<start_of_turn>`-like text
is read as control tokens, and the messages' text, which is always read as plain text. A
user who writes `<end_of_turn>` therefore cannot close their turn and write the model's.

A GGUF without a chat template (the embedded Gemma 3 270M is a base model) was never taught
any turn markup: it continues text. Its chat is a transcript it can continue —
`User: …\nAssistant:` — which ends when the model starts the next `\nUser:` (or
`\nAssistant:`) line.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llm_server.engine.errors import ChatTemplateError

if TYPE_CHECKING:  # only typed here: the chat needs no llama.cpp to be imported
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


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


# The next turn of a transcript (the user's, or one more of its own): the base model's answer
# ends where it begins.
TRANSCRIPT_STOPS = ("\nUser:", "\nAssistant:")
# llama.cpp's repetition penalty for chat on a model without a template when the client sends
# no presence or frequency penalty: a base model left alone loops (see the README).
BASE_CHAT_REPEAT_PENALTY = 1.2


class ChatFormatter:
    """Renders messages with the model's template (sandboxed Jinja) or as a transcript."""

    def __init__(self, template: str | None, bos: str, eos: str) -> None:
        self._bos, self._eos = bos, eos
        self._template = None
        if template is not None:
            environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            environment.globals["raise_exception"] = _raise
            self._template = environment.from_string(template)

    @classmethod
    def for_model(cls, model: LoadedModel, template: str | None = None) -> ChatFormatter:
        """The model's formatter: `template` if given, else the GGUF's own (if any)."""
        own = template if template is not None else model.chat_template()
        return cls(own, model.token_text(model.bos), model.token_text(model.eos))

    @property
    def uses_model_template(self) -> bool:
        return self._template is not None

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Stops that end an assistant turn even when the model does not emit its EOG token."""
        return () if self._template is not None else TRANSCRIPT_STOPS

    def render(self, messages: list[Message]) -> list[Segment]:
        """The prompt for `messages`, ending by opening the assistant's turn."""
        if self._template is None:
            return transcript_segments(messages)
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


def transcript_segments(messages: list[Message]) -> list[Segment]:
    """A plain transcript for a model without a chat template: the system text (if any) as
    an opening paragraph, then `User: …` and `Assistant: …` lines, ending with `Assistant:`
    for the model to continue. There is no markup a message could forge control tokens with;
    like any text, a message can write `\nAssistant:` lines, which only change what a base
    model is asked to continue.

    The tokenizer adds `<bos>`.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    segments: list[Segment] = []
    if system:
        segments += [Segment(system, markup=False), Segment("\n\n", markup=True)]
    for message in messages:
        if message.role == "system":
            continue
        label = "Assistant" if message.role == "assistant" else "User"
        # The space goes with the text, as the model read `User: Hi` (`▁Hi` is one token).
        segments += [
            Segment(f"{label}:", markup=True),
            Segment(f" {message.content}", markup=False),
        ]
        segments.append(Segment("\n", markup=True))
    segments.append(Segment("Assistant:", markup=True))
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

"""Turning a chat into a prompt: the GGUF's own template, or Gemma's turn format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llm_server.engine.model import LoadedModel

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


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

    def render(self, messages: list[Message]) -> str:
        if self._template is None:
            return gemma_prompt(messages)
        context: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "add_generation_prompt": True,
            "bos_token": self._bos,
            "eos_token": self._eos,
        }
        try:
            return self._template.render(**context)
        except TemplateError as exc:
            raise ChatTemplateError(f"the model's chat template failed: {exc}") from None


def gemma_prompt(messages: list[Message]) -> str:
    """Gemma's turn format. Gemma has no system role: the system text opens the first user turn.

    The tokenizer adds `<bos>`; the prompt ends by opening the model's turn.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[str] = []
    for message in messages:
        if message.role == "system":
            continue
        content = message.content
        if system and message.role == "user":
            content, system = f"{system}\n\n{content}", ""
        role = "model" if message.role == "assistant" else "user"
        turns.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    if system:
        turns.append(f"<start_of_turn>user\n{system}<end_of_turn>\n")
    return "".join(turns) + "<start_of_turn>model\n"

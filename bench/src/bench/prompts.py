"""Prompts of a given token length from local text (CPython's own documentation, no downloads).

Every prompt starts with a unique tag, so that no server's prompt or prefix cache can reuse
another request's work: the body texts repeat, the first tokens never do.
"""

from __future__ import annotations

import itertools
import pydoc_data.topics
import secrets
from pathlib import Path

import llama_cpp

TAG_TOKENS = 8  # the unique tag, "[a1b2c3d4] ", is about this many Gemma tokens


class Tokenizer:
    """The model's own vocabulary (the GGUF loaded with `vocab_only`)."""

    def __init__(self, model: Path) -> None:
        self._llama = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)

    def tokenize(self, text: str) -> list[int]:
        return self._llama.tokenize(text.encode(), add_bos=False, special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llama.detokenize(tokens).decode(errors="ignore")

    def end_of_generation_tokens(self) -> list[int]:
        """Every token that ends generation (for Gemma 3: <eos>, <end_of_turn>, …)."""
        count = llama_cpp.llama_vocab_n_tokens(self._vocab)
        return [t for t in range(count) if llama_cpp.llama_vocab_is_eog(self._vocab, t)]


def corpus() -> str:
    topics: dict[str, str] = pydoc_data.topics.topics
    return "\n\n".join(topics[key] for key in sorted(topics))


class PromptPool:
    """Per length, a few dozen body texts cut from the corpus at different offsets."""

    def __init__(self, tokenizer: Tokenizer, lengths: list[int], bodies: int = 48) -> None:
        tokens = tokenizer.tokenize(corpus())
        self._bodies: dict[int, list[str]] = {}
        self.measured: dict[int, float] = {}
        for length in sorted(set(lengths)):
            size = max(1, length - TAG_TOKENS)
            stride = max(1, (len(tokens) - size) // bodies)
            texts = [
                tokenizer.detokenize(tokens[i * stride : i * stride + size]) for i in range(bodies)
            ]
            self._bodies[length] = texts
            sample = [len(tokenizer.tokenize(self._tag() + text)) for text in texts[:8]]
            self.measured[length] = sum(sample) / len(sample)
        self._counter = itertools.count()

    @staticmethod
    def _tag() -> str:
        return f"[{secrets.token_hex(4)}] "

    def prompt(self, length: int) -> str:
        bodies = self._bodies[length]
        return self._tag() + bodies[next(self._counter) % len(bodies)]

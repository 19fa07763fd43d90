"""Finding and loading a GGUF model with llama.cpp."""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from llm_server.engine.embedded import embedded_model_path

logger = logging.getLogger("llm_server.engine")


def resolve_model_path(configured: Path | None) -> Path:
    """The configured GGUF, or the embedded Gemma 3 270M assembled from its PyPI package."""
    if configured is not None:
        if not configured.is_file():
            raise FileNotFoundError(f"LLM_MODEL_PATH does not name a file: {configured}")
        return configured
    return embedded_model_path()


@dataclass
class LoadedModel:
    """A llama.cpp model and its vocabulary; freed by `close`."""

    path: Path
    model: llama_cpp.llama_model_p | None
    vocab: llama_cpp.llama_vocab_p
    n_ctx_train: int

    @classmethod
    def load(cls, path: Path) -> LoadedModel:
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not model:
            raise ValueError(f"llama.cpp could not load {path} (is it a GGUF file?)")
        vocab = llama_cpp.llama_model_get_vocab(model)
        return cls(path, model, vocab, int(llama_cpp.llama_model_n_ctx_train(model)))

    def metadata(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(1 << 16)
        size = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer))
        if size < 0:
            return None
        return bytes(buffer.value).decode("utf-8", errors="replace")

    def chat_template(self) -> str | None:
        raw = llama_cpp.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8", errors="replace") if raw else None

    @property
    def bos(self) -> int:
        return int(llama_cpp.llama_vocab_bos(self.vocab))

    @property
    def eos(self) -> int:
        return int(llama_cpp.llama_vocab_eos(self.vocab))

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        """Token ids of `text`; `parse_special` turns `<start_of_turn>`-like text into controls."""
        data = text.encode()
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, add_special, parse_special
            )
        return list(buffer[:count])

    def token_text(self, token: int) -> str:
        buffer = ctypes.create_string_buffer(256)
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, True)
        return bytes(buffer.raw[: max(size, 0)]).decode("utf-8", errors="replace")

    def longest_token_bytes(self) -> int:
        """The most bytes one token's text has in the vocabulary (an upper bound on what it
        reads: SentencePiece writes a space as the 3-byte `▁`)."""
        text_of = llama_cpp.llama_vocab_get_text
        tokens = range(llama_cpp.llama_vocab_n_tokens(self.vocab))
        return max((len(text_of(self.vocab, token) or b"") for token in tokens), default=1)

    def close(self) -> None:
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None

"""A tiny, genuinely different model for tests: a random-weight llama-architecture GGUF
(64-wide, 2 layers, a SentencePiece vocabulary of about 600 tokens with byte fallback)
whose metadata carries a chat template. llama.cpp loads it in milliseconds and generates
(noise: the weights are random, fixed by a seed, so greedy answers repeat).

Used by llm-server's tests (the `tiny_model` fixture writes it to a temporary folder), and
by other services' tests as a script:

    python tests/support/tiny_model.py OUT.gguf
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import gguf
import numpy as np

ARCH = "llama"
EMBED, LAYERS, HEADS, KV_HEADS, FEED_FORWARD, CONTEXT = 64, 2, 4, 2, 128, 512
CONTROL = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# Its own turn markup (not Gemma's, not a transcript): the server must use this template.
# No `bos_token`: the tokenizer adds it (add_bos_token), as llama.cpp does for such models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}{{ message['content'] }}{{ '<|end|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
_SAMPLE = (
    "the of and to in is it you that he was for on are with as his they be at one have this "
    "from or had by hot word but what some we can out other were all there when up use your "
    "how said an each she which do their time if will way about many then them write would "
    "like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side been "
    "now find hello world model tiny answer question capital france paris"
)
WORDS = _SAMPLE.split()


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of a SentencePiece vocabulary with byte fallback."""
    types = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>", *CONTROL]
    kinds = [types.UNKNOWN, types.CONTROL, types.CONTROL] + [types.CONTROL] * len(CONTROL)
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    kinds += [types.BYTE] * 256
    # SentencePiece builds a word by merging pairs into pieces of the vocabulary: every
    # prefix of a word is one, so that whole words become single tokens.
    prefixes = ["▁" + word[:end] for word in WORDS for end in range(1, len(word) + 1)]
    singles = ["▁", *string.ascii_letters, *string.digits, *".,!?'-:;()"]
    pieces = list(dict.fromkeys(singles + prefixes))
    tokens += pieces
    kinds += [types.NORMAL] * len(pieces)
    # SentencePiece merges the pair whose piece scores highest: longer pieces first.
    scores = [0.0] * (len(tokens) - len(pieces)) + [float(len(p)) for p in pieces]
    return tokens, scores, [int(kind) for kind in kinds]


def write_tiny_model(path: Path, seed: int = 16) -> Path:
    """Write the model to `path` (the same bytes for the same seed); returns `path`."""
    tokens, scores, kinds = vocabulary()
    writer = gguf.GGUFWriter(str(path), ARCH)
    writer.add_name("tiny-random-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(kinds)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, tensor in tensors(len(tokens), np.random.default_rng(seed)):
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tensors(vocab: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Random weights in llama.cpp's names; numpy shapes are ggml's reversed."""
    head = EMBED // HEADS

    def weights(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    found = [
        ("token_embd.weight", weights(vocab, EMBED)),
        ("output_norm.weight", ones(EMBED)),
        ("output.weight", weights(vocab, EMBED)),
    ]
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        found += [
            (f"{block}.attn_norm.weight", ones(EMBED)),
            (f"{block}.attn_q.weight", weights(HEADS * head, EMBED)),
            (f"{block}.attn_k.weight", weights(KV_HEADS * head, EMBED)),
            (f"{block}.attn_v.weight", weights(KV_HEADS * head, EMBED)),
            (f"{block}.attn_output.weight", weights(EMBED, HEADS * head)),
            (f"{block}.ffn_norm.weight", ones(EMBED)),
            (f"{block}.ffn_gate.weight", weights(FEED_FORWARD, EMBED)),
            (f"{block}.ffn_up.weight", weights(FEED_FORWARD, EMBED)),
            (f"{block}.ffn_down.weight", weights(EMBED, FEED_FORWARD)),
        ]
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/support/tiny_model.py OUT.gguf")
    print(write_tiny_model(Path(sys.argv[1])))

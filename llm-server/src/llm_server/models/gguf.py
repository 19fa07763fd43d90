"""What a GGUF file says about itself, read from its header without loading it: enough to
estimate the memory a model takes and whether it has a chat template, before it is loaded.

The format (ggml's docs/gguf.md): magic `GGUF`, version, tensor count, key/value count, then
the key/values, each a string key, a type and a value (scalars, strings, typed arrays).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays kept in memory: per-layer numbers (head counts), never the vocabulary's token lists.
_MAX_KEPT_ARRAY = 4096
# The KV cache holds keys and values as f16 (llama.cpp's default cache type).
KV_ELEMENT_BYTES = 2

Value = int | float | bool | str | list["Value"] | None


class GGUFError(ValueError):
    """The file is not a GGUF file llm-server can read."""


@dataclass(frozen=True)
class GGUFInfo:
    """A model's size and shape as its GGUF header gives them."""

    file_bytes: int
    architecture: str
    n_ctx_train: int | None
    has_chat_template: bool
    kv_bytes_per_cell: int  # 0 when the header does not say (the estimate is then the file)

    def memory_bytes(self, kv_cells: int) -> int:
        """The estimate of what the model holds loaded: its weights plus a full KV cache."""
        return self.file_bytes + kv_cells * self.kv_bytes_per_cell


def read_gguf_info(path: Path) -> GGUFInfo:
    """The header's facts; `GGUFError` if the file is not a readable GGUF."""
    metadata = read_metadata(path)
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise GGUFError(f"{path} has no general.architecture: not a model GGUF")
    n_ctx = metadata.get(f"{arch}.context_length")
    return GGUFInfo(
        file_bytes=path.stat().st_size,
        architecture=arch,
        n_ctx_train=n_ctx if isinstance(n_ctx, int) else None,
        has_chat_template=isinstance(metadata.get("tokenizer.chat_template"), str),
        kv_bytes_per_cell=kv_bytes_per_cell(metadata, arch),
    )


def kv_bytes_per_cell(metadata: dict[str, Value], arch: str) -> int:
    """Bytes of keys and values one KV cell holds over every layer (0 when unknown)."""

    def number(key: str) -> int | None:
        value = metadata.get(f"{arch}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    layers, embedding = number("block_count"), number("embedding_length")
    heads = metadata.get(f"{arch}.attention.head_count")
    kv_heads = metadata.get(f"{arch}.attention.head_count_kv", heads)
    if layers is None or embedding is None:
        return 0
    per_layer = kv_heads if isinstance(kv_heads, list) else [kv_heads] * layers
    first_heads = heads[0] if isinstance(heads, list) and heads else heads
    if not isinstance(first_heads, int) or first_heads <= 0:
        return 0
    key_length = number("attention.key_length") or embedding // first_heads
    value_length = number("attention.value_length") or key_length
    total = sum(h for h in per_layer if isinstance(h, int))
    return total * (key_length + value_length) * KV_ELEMENT_BYTES


def read_metadata(path: Path) -> dict[str, Value]:
    """Every key/value of the header but long arrays (the vocabulary), which are skipped."""
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _Reader(data).metadata()
    except (OSError, ValueError, struct.error, IndexError) as exc:  # GGUFError is a ValueError
        raise GGUFError(f"{path} is not a readable GGUF file ({exc})") from None


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self._data = data
        self._at = 0

    def metadata(self) -> dict[str, Value]:
        if self._data[:4] != b"GGUF":
            raise GGUFError("no GGUF magic at its start")
        self._at = 4
        version = self._scalar(4)
        if version not in (2, 3):
            raise GGUFError(f"GGUF version {version} is not supported")
        self._scalar(10)  # tensor count
        count = self._scalar(10)
        assert isinstance(count, int)
        found: dict[str, Value] = {}
        for _ in range(count):
            key = self._string()
            found[key] = self._value(self._scalar(4))
        return found

    def _scalar(self, kind: int) -> int | float | bool:
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise GGUFError(f"unknown value type {kind}")
        (value,) = struct.unpack_from(fmt, self._data, self._at)
        self._at += struct.calcsize(fmt)
        return value  # type: ignore[no-any-return]

    def _string(self) -> str:
        (size,) = struct.unpack_from("<Q", self._data, self._at)
        start = self._at + 8
        self._at = start + size
        if self._at > len(self._data):
            raise GGUFError("a string runs past the end of the file")
        return bytes(self._data[start : self._at]).decode("utf-8", errors="replace")

    def _value(self, kind: object) -> Value:
        if kind == _STRING:
            return self._string()
        if kind != _ARRAY:
            assert isinstance(kind, int)
            return self._scalar(kind)
        item, size = struct.unpack_from("<IQ", self._data, self._at)
        self._at += 12
        if size > _MAX_KEPT_ARRAY:
            self._skip_array(item, size)
            return None
        return [self._value(item) for _ in range(size)]

    def _skip_array(self, item: int, size: int) -> None:
        if item == _STRING:
            for _ in range(size):
                (length,) = struct.unpack_from("<Q", self._data, self._at)
                self._at += 8 + length
        elif item in _SCALARS:
            self._at += size * struct.calcsize(_SCALARS[item])
        else:
            raise GGUFError(f"cannot skip an array of type {item}")
        if self._at > len(self._data):
            raise GGUFError("an array runs past the end of the file")

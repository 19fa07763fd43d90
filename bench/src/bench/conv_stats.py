"""The conversation workload's figures: per turn, time to first token, decode speed and how
much of each prompt the server reused instead of recomputing; over the run, throughput."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.client import RequestRecord
from bench.metrics import percentile


@dataclass
class Turn:
    user: int
    turn: int  # 1-based
    record: RequestRecord


def _decode_rate(r: RequestRecord) -> float | None:
    """Tokens/s of one answer after its first token."""
    n = r.output_tokens
    span = r.e2e - r.ttft
    return (n - 1) / span if n > 1 and span > 0 else None


def reuse(turns: list[Turn]) -> dict[str, Any]:
    """Prompt tokens reused (the server's `cached_tokens`, or llama-server's `cache_n`) and
    recomputed, over the answers that reported them."""
    known = [
        t.record
        for t in turns
        if t.record.ok and t.record.state.cached_tokens is not None and t.record.state.prompt_tokens
    ]
    if not known:  # a server that reports no reuse: unknown, not zero
        nan = float("nan")
        return dict.fromkeys(
            ("prompt_tokens", "reused_tokens", "recomputed_tokens", "reused_fraction"), nan
        ) | {"reuse_reported": 0}
    prompt = sum(r.state.prompt_tokens or 0 for r in known)
    reused = sum(r.state.cached_tokens or 0 for r in known)
    return {
        "reuse_reported": len(known),
        "prompt_tokens": prompt,
        "reused_tokens": reused,
        "recomputed_tokens": prompt - reused,
        "reused_fraction": reused / prompt if prompt else float("nan"),
    }


def turn_summary(turns: list[Turn]) -> dict[str, Any]:
    """TTFT p50/p99, median decode tokens/s per answer, mean prompt tokens, reuse."""
    ok = [t.record for t in turns if t.record.ok]
    ttft = [1000 * r.ttft for r in ok]
    rates = [x for r in ok if (x := _decode_rate(r)) is not None]
    prompts = [r.state.prompt_tokens for r in ok if r.state.prompt_tokens is not None]
    return {
        "answers": len(ok),
        "errors": len(turns) - len(ok),
        "ttft_p50_ms": percentile(ttft, 50),
        "ttft_p99_ms": percentile(ttft, 99),
        "decode_tokens_per_s": statistics.median(rates) if rates else float("nan"),
        "prompt_tokens_mean": sum(prompts) / len(prompts) if prompts else float("nan"),
        **reuse(turns),
    }


def summarize_conversations(turns: list[Turn], turn_count: int) -> dict[str, Any]:
    """Flat figures (so that medians over rounds apply key by key): the whole run, turns 2 and
    later together (the turns that can reuse a history), and `turn<k>_<figure>` per turn."""
    ok = [t.record for t in turns if t.record.ok]
    out: dict[str, Any] = {
        "answers": len(ok),
        "errors": len(turns) - len(ok),
        "token_mismatches": sum(1 for t in turns if t.record.token_problem),
    }
    if problems := [t.record.token_problem for t in turns if t.record.token_problem]:
        out["first_token_mismatch"] = problems[0]
    if errors := [t.record.error for t in turns if t.record.error]:
        out["first_error"] = errors[0]
    if ok:
        span = max(r.finished for r in ok) - min(r.started for r in ok)
        tokens = sum(r.output_tokens for r in ok)
        out.update(seconds=span, output_tokens=tokens, output_tokens_per_s=tokens / span)
    later = turn_summary([t for t in turns if t.turn >= 2])
    out.update({f"later_{k}": v for k, v in later.items()})
    for k in range(1, turn_count + 1):
        figures = turn_summary([t for t in turns if t.turn == k])
        out.update({f"turn{k}_{name}": value for name, value in figures.items()})
    return out

"""What one run measures: a list of workloads, each run against every target in turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["closed", "poisson", "interference"]
MARGIN = 128  # tokens of slack per sequence: prompt lengths are approximate


@dataclass(frozen=True)
class Workload:
    kind: Kind
    prompt: int  # prompt tokens (about)
    max_tokens: int
    concurrency: int = 0  # closed loop: clients; interference: decoding streams
    rate: float = 0.0  # poisson: requests per second
    long_prompt: int = 0  # interference: the prompt that arrives
    parallel_cap: int = 32  # poisson: slots the servers get
    shape: str = "sdk"  # bench.shapes: the request body

    @property
    def key(self) -> str:
        if self.kind == "closed":
            return f"closed c={self.concurrency} prompt={self.prompt} {self.shape}"
        if self.kind == "poisson":
            return f"poisson {self.rate:g}/s prompt={self.prompt} {self.shape}"
        return (
            f"interference {self.concurrency} streams + {self.long_prompt}-token prompt "
            f"{self.shape}"
        )

    @property
    def parallel(self) -> int:
        """Slots a server is started with: the concurrency (llama-server's `-np`)."""
        if self.kind == "closed":
            return self.concurrency
        if self.kind == "poisson":
            return self.parallel_cap
        return self.concurrency + 1

    @property
    def per_sequence(self) -> int:
        longest = max(self.prompt + self.max_tokens, self.long_prompt + 16)
        return -(-(longest + MARGIN) // 256) * 256


def build_plan(
    levels: list[int],
    prompt_lengths: list[int],
    long_levels: list[int],
    max_tokens: int,
    rates: list[float],
    interference_streams: int,
    shapes: tuple[str, ...] = ("sdk",),
    shape_levels: tuple[int, ...] = (),
) -> list[Workload]:
    """The first shape and prompt length at every level, each other shape beside it at the
    `shape_levels` that are levels; the other prompt lengths at `long_levels`; then Poisson
    arrivals (first prompt length) and the long-prompt interference scenario. Interference
    uses the `completions` request: it measures the scheduler, and a chat transcript's stop
    strings could end a stream before the long prompt arrives."""
    first, *others = prompt_lengths
    head, *rest = shapes
    plan = []
    for c in levels:
        plan.append(Workload("closed", first, max_tokens, concurrency=c, shape=head))
        plan += [
            Workload("closed", first, max_tokens, concurrency=c, shape=s)
            for s in rest
            if c in shape_levels
        ]
    plan += [
        Workload("closed", p, max_tokens, concurrency=c, shape=head)
        for p in others
        for c in long_levels
    ]
    plan += [
        Workload("poisson", first, max_tokens, rate=r, parallel_cap=max(levels), shape=head)
        for r in rates
    ]
    if interference_streams:
        plan.append(
            Workload(
                "interference",
                32,
                200,
                concurrency=interference_streams,
                long_prompt=max([*prompt_lengths, 1500]),
                shape="completions",
            )
        )
    return plan

"""Stop strings across token boundaries: hold back text that could be the start of a stop."""

from __future__ import annotations


class StopMatcher:
    """Feeds generated text through; releases what can no longer be part of a stop string."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was reached)."""
        if not self._stops:
            return text, False
        pending = self._held + text
        first = min(
            (index for index in (pending.find(s) for s in self._stops) if index >= 0),
            default=-1,
        )
        if first >= 0:
            self._held = ""
            return pending[:first], True
        keep = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(pending)), keep, -1):
                if pending.endswith(stop[:length]):
                    keep = length
                    break
        self._held = pending[len(pending) - keep :] if keep else ""
        return pending[: len(pending) - keep], False

    def flush(self) -> str:
        """Text still held back when generation ends for another reason."""
        held, self._held = self._held, ""
        return held

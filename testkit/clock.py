"""A clock that only moves when told, for tests that feed times instead of sleeping."""

from __future__ import annotations


class SteppedClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

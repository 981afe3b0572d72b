"""Clocks for tests that feed times instead of sleeping."""

from __future__ import annotations

import time


class SteppedClock:
    """A clock that only moves when told."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class JumpClock:
    """The wall clock plus whatever the test jumped: time goes on as usual (orders stay
    real) and a test skips ahead to a timer's end instead of sleeping through it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds

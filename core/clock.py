"""Time as a collaborator: code that decides by the clock takes a `Clock` or `now`.

Production passes `wall`; tests pass a clock they move, so timers are tested by feeding
times rather than by sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]  # seconds since the epoch (UTC)


def wall() -> float:
    return time.time()


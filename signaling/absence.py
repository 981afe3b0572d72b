"""When a waiting terminal that is not connected anywhere is abandoned (pure, `now` in).

A terminal whose connection closed cleanly starts its grace period at once (its node
marks it). One whose node died is noticed later, when its presence key expires (the key
lives `presence_ttl` after the node's last refresh). Either way a terminal absent past its
deadline is abandoned, whichever node held it and whether that node is alive.
"""

from __future__ import annotations

from enum import Enum


class Absence(Enum):
    START_GRACE = "start_grace"  # absent and not yet marked: set its deadline
    IN_GRACE = "in_grace"  # absent, deadline not reached: its place is kept
    ABANDON = "abandon"  # absent past its deadline


def judge(deadline: float | None, now: float) -> Absence:
    """The verdict on a waiting ticket whose terminal has no live presence."""
    if deadline is None:
        return Absence.START_GRACE
    return Absence.ABANDON if now >= deadline else Absence.IN_GRACE


def noticed_deadline(now: float, grace_s: float, presence_ttl_s: float,
                     refresh_s: float) -> float:
    """The end of the grace of a terminal noticed absent by its presence key expiring now.

    It was last seen no earlier than `now - presence_ttl_s` and no later than
    `now - presence_ttl_s + refresh_s`; the grace counts from the later bound, so the
    terminal is always away a full grace, and at most `refresh_s` more, before it goes.
    """
    return now - presence_ttl_s + refresh_s + grace_s

"""When positions are pushed: pure, times fed in."""

from __future__ import annotations

from signaling.positions import PositionSchedule

CODES = ["A", "B", "C", "D"]


def test_a_changed_item_is_pushed_at_once_then_not_again_within_the_gap() -> None:
    s = PositionSchedule(gap_s=0.25, period_s=10.0, refresh_at=100.0)
    s.mark("B")
    assert s.next(1.0, CODES) == ("B", False, 1.0)
    s.pushed("B", 1.0)
    s.mark("B")  # changed again at once
    item, refresh, wake = s.next(1.1, CODES)
    assert (item, refresh) == (None, False) and wake == 1.25
    assert s.next(1.25, CODES)[:2] == ("B", False)


def test_the_refresh_visits_every_item_once_per_period() -> None:
    s = PositionSchedule(gap_s=0.25, period_s=8.0)
    seen, now = [], 0.0
    for _ in range(len(CODES)):
        item, refresh, _ = s.next(now, CODES)
        assert refresh and item is not None
        seen.append(item)
        assert s.next(now, CODES)[0] is None  # the next is not due yet
        now = s.refresh_at
    assert sorted(seen) == CODES and now == 8.0


def test_a_change_goes_before_the_refresh() -> None:
    s = PositionSchedule(gap_s=0.25, period_s=8.0)
    s.mark("D")
    assert s.next(0.0, CODES) == ("D", False, 0.0)

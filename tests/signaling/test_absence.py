"""The abandon decision for terminals connected nowhere: pure, times fed in."""

from __future__ import annotations

from signaling.absence import Absence, judge, noticed_deadline

GRACE, TTL, REFRESH = 30.0, 8.0, 8.0 / 3


def test_an_absent_terminal_without_a_deadline_starts_its_grace() -> None:
    assert judge(None, 1000.0) is Absence.START_GRACE


def test_it_keeps_its_place_until_the_deadline_then_is_abandoned() -> None:
    assert judge(1030.0, 1029.9) is Absence.IN_GRACE
    assert judge(1030.0, 1030.0) is Absence.ABANDON
    assert judge(1030.0, 1100.0) is Absence.ABANDON


def test_a_terminal_of_a_dead_node_is_away_a_full_grace_and_at_most_a_refresh_more() -> None:
    died = 1000.0
    for last_refresh in (died - REFRESH, died - REFRESH / 2, died):
        noticed = last_refresh + TTL  # its presence key expires
        deadline = noticed_deadline(noticed, GRACE, TTL, REFRESH)
        assert died + GRACE <= deadline <= died + GRACE + REFRESH

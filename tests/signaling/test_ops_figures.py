"""Supervisor figures from fixed event lists: service level, abandonment, ASA/AHT, steps."""

from __future__ import annotations

from core.ops_figures import (
    Rating,
    RatingEvent,
    StepTiming,
    VisitEvent,
    VisitKind,
    buckets,
    call_figures,
    percentile,
    satisfaction,
    step_figures,
)

DAY = 1_800_000_000.0  # a fixed start of day


def visit(kind: VisitKind, at: float, wait: float = 0.0, handle: float = 0.0,
          tid: str = "t") -> VisitEvent:
    return VisitEvent(kind=kind, at=DAY + at, ticket_id=tid, item_code="A",
                      wait_s=wait, handle_s=handle)


EVENTS = [
    visit(VisitKind.JOINED, 0, tid="1"), visit(VisitKind.JOINED, 1, tid="2"),
    visit(VisitKind.JOINED, 2, tid="3"), visit(VisitKind.JOINED, 3, tid="4"),
    visit(VisitKind.JOINED, 4, tid="5"),
    visit(VisitKind.ANSWERED, 10, wait=10, tid="1"),  # in time (≤ 20 s)
    visit(VisitKind.ANSWERED, 41, wait=40, tid="2"),  # late
    visit(VisitKind.ABANDONED, 62, wait=60, tid="3"),  # a lost applicant
    visit(VisitKind.LEFT, 5, wait=2, tid="4"),  # a wrong tap: not against the service level
    visit(VisitKind.ENDED, 100, handle=90, tid="1"),
    visit(VisitKind.ENDED, 200, handle=150, tid="2"),
    visit(VisitKind.ANSWERED, 86_400 + 5, wait=1, tid="6"),  # tomorrow: not today's
]


def test_service_level_counts_answers_in_time_against_real_losses() -> None:
    f = call_figures(EVENTS, since=DAY, now=DAY + 86_399, answer_within_s=20)
    assert (f.joined, f.answered, f.abandoned, f.answered_in_time) == (5, 2, 2, 1)
    assert f.service_level == 1 / 3  # 1 in time of 2 answered + 1 real abandonment
    assert f.abandonment == 0.5  # 2 of 4 finished waits ended unanswered
    assert f.asa_s == 25
    assert f.aht_s == 120
    assert f.calls_ended == 2


def test_figures_only_count_what_has_happened_by_now() -> None:
    f = call_figures(EVENTS, since=DAY, now=DAY + 30, answer_within_s=20)
    assert (f.answered, f.abandoned, f.calls_ended) == (1, 1, 0)
    assert f.service_level == 1.0
    assert f.aht_s is None


def test_no_events_give_no_rates_rather_than_zero() -> None:
    f = call_figures([], since=DAY, now=DAY + 10, answer_within_s=20)
    assert f.service_level is None and f.abandonment is None and f.asa_s is None


def test_step_times_median_p90_and_overdue() -> None:
    now = DAY + 10_000
    steps = [StepTiming("town", DAY, DAY + 1000, DAY + d) for d in (100, 200, 300, 400, 500,
                                                                    600, 700, 800, 900, 1500)]
    steps += [StepTiming("town", DAY, DAY + 20_000),  # open, not due yet
              StepTiming("district", DAY, DAY + 5_000),  # open and overdue
              StepTiming("district", DAY, DAY + 50, DAY + 60)]
    district, town = step_figures(steps, now)  # by level name
    assert (town.level, town.open, town.ended, town.overdue) == ("town", 1, 10, 1)
    assert town.median_s == 500
    assert town.p90_s == 900
    assert (district.open, district.overdue, district.median_s) == (1, 2, 60)  # late end too


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([1, 2, 3, 4], 50) == 2


def test_satisfaction_share_is_everything_but_dissatisfied() -> None:
    rs = [RatingEvent(DAY, r) for r in (Rating.VERY_SATISFIED, Rating.SATISFIED,
                                        Rating.FAIRLY_SATISFIED, Rating.DISSATISFIED)]
    f = satisfaction(rs)
    assert f.ratings == 4 and f.counts["dissatisfied"] == 1
    assert f.satisfied_share == 0.75
    assert satisfaction([]).satisfied_share is None


def test_buckets_per_hour_for_the_day_chart() -> None:
    b = buckets(EVENTS, DAY, 3600, 24)
    assert b["answered"][0] == 2 and sum(b["answered"]) == 2
    assert b["abandoned"][0] == 2

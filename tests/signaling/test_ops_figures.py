"""Supervisor figures from fixed event lists: service level, abandonment, ASA/AHT, steps."""

from __future__ import annotations

from core.ops_figures import (
    CaseTiming,
    Rating,
    RatingEvent,
    StepTiming,
    VisitEvent,
    VisitKind,
    buckets,
    call_figures,
    percentile,
    report_rows,
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


def test_report_rows_by_item_village_and_clerk() -> None:
    visits = [
        VisitEvent(VisitKind.JOINED, DAY, "1", "A", village="甲村"),
        VisitEvent(VisitKind.ANSWERED, DAY + 30, "1", "A", village="甲村", clerk="c1",
                   call_id="k1", wait_s=30),
        VisitEvent(VisitKind.ENDED, DAY + 330, "1", "A", clerk="c1", call_id="k1",
                   handle_s=300),
        VisitEvent(VisitKind.JOINED, DAY, "2", "B", village="乙村"),
        VisitEvent(VisitKind.ABANDONED, DAY + 90, "2", "B", village="乙村", wait_s=90),
    ]
    cases = [CaseTiming("A", "甲村", "c1", DAY, DAY + 100, DAY + 50),
             CaseTiming("A", "甲村", "c1", DAY, DAY + 100, DAY + 500),
             CaseTiming("A", "甲村", "c1", DAY, DAY + 100)]
    rated = [RatingEvent(DAY, Rating.SATISFIED, "A", "c1", "甲村"),
             RatingEvent(DAY, Rating.DISSATISFIED, "A", "c1", "甲村")]
    a, b = report_rows(visits, cases, rated, "item")
    assert (a.key, a.visits, a.answered, a.cases, a.done) == ("A", 1, 1, 3, 2)
    assert a.done_rate == 2 / 3 and a.on_time_rate == 0.5
    assert a.aht_s == 300 and a.asa_s == 30 and a.satisfied_share == 0.5
    assert (b.key, b.visits, b.abandoned, b.done_rate) == ("B", 1, 1, None)
    village = {r.key: r for r in report_rows(visits, cases, rated, "village")}
    assert village["甲村"].aht_s == 300  # the call's end counts for the village it served
    (clerk,) = report_rows(visits, cases, rated, "clerk")  # waits are nobody's
    assert (clerk.key, clerk.visits, clerk.answered, clerk.cases) == ("c1", 1, 1, 3)

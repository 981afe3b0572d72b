"""The figures a supervisor and the reports show, computed from event lists (pure, `now` in).

A visit is what happened to one queue ticket: joined, then answered (a clerk took it) or
abandoned / left, and, when answered, its call ended. The approval side is the timing of
each case step. Nothing here reads a clock, Redis or PostgreSQL: callers pass the events
and the time, and tests feed fixed lists.

Definitions (as the supervisor page explains them):
- service level: answered within `answer_within_s` / (answered + abandoned), abandoned
  counting only tickets that waited longer than `short_abandon_s` (a tap on the wrong
  item is not a lost applicant);
- abandonment: share of finished waits (answered + gone) that ended without an answer;
- ASA (average speed of answer): mean wait of the answered;
- AHT (average handle time): mean call length of ended calls;
- per step: open count, overdue count (open past its due time, or ended after it), median
  and 90th percentile duration of ended steps (nearest-rank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field


class VisitKind(StrEnum):
    JOINED = "joined"
    ANSWERED = "answered"  # a clerk accepted the offer; `wait_s` is the wait
    ABANDONED = "abandoned"  # the terminal went away past its grace period
    LEFT = "left"  # the applicant left the queue before an answer
    ENDED = "ended"  # the call ended; `handle_s` is its length


class Rating(StrEnum):
    """好差评: the four faces of the kiosk, best first."""

    VERY_SATISFIED = "very_satisfied"  # 非常满意
    SATISFIED = "satisfied"  # 满意
    FAIRLY_SATISFIED = "fairly_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


RATING_WORDS: dict[Rating, str] = {
    Rating.VERY_SATISFIED: "非常满意", Rating.SATISFIED: "满意",
    Rating.FAIRLY_SATISFIED: "基本满意", Rating.DISSATISFIED: "不满意",
}


@dataclass(frozen=True)
class VisitEvent:
    kind: VisitKind
    at: float  # epoch seconds
    ticket_id: str
    item_code: str
    terminal_id: str = ""
    village: str = ""
    clerk: str = ""
    call_id: str = ""
    wait_s: float = 0.0
    handle_s: float = 0.0


@dataclass(frozen=True)
class StepTiming:
    """One approval step of one case (from `case_steps`)."""

    level: str
    started_at: float
    due_at: float
    ended_at: float | None = None


@dataclass(frozen=True)
class RatingEvent:
    at: float
    rating: Rating
    item_code: str = ""
    clerk: str = ""
    village: str = ""


class CallFigures(BaseModel):
    joined: int = 0
    answered: int = 0
    abandoned: int = 0  # abandoned + left, the waits that ended unanswered
    answered_in_time: int = 0
    service_level: float | None = None  # share, 0..1; None when nothing finished
    abandonment: float | None = None
    asa_s: float | None = None
    aht_s: float | None = None
    calls_ended: int = 0


class StepFigures(BaseModel):
    level: str
    open: int = 0
    overdue: int = 0
    ended: int = 0
    median_s: float | None = None
    p90_s: float | None = None


class SatisfactionFigures(BaseModel):
    ratings: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    satisfied_share: float | None = None  # non-dissatisfied / all (满意度)


@dataclass
class _Acc:
    waits: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of the values; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def call_figures(events: Iterable[VisitEvent], since: float, now: float,
                 answer_within_s: float, short_abandon_s: float = 5.0) -> CallFigures:
    """Figures of the visits whose event falls in [since, now]."""
    f = CallFigures()
    acc = _Acc()
    counted_abandoned = 0
    for e in events:
        if not since <= e.at <= now:
            continue
        match e.kind:
            case VisitKind.JOINED:
                f.joined += 1
            case VisitKind.ANSWERED:
                f.answered += 1
                acc.waits.append(e.wait_s)
                if e.wait_s <= answer_within_s:
                    f.answered_in_time += 1
            case VisitKind.ABANDONED | VisitKind.LEFT:
                f.abandoned += 1
                if e.wait_s > short_abandon_s:
                    counted_abandoned += 1
            case VisitKind.ENDED:
                f.calls_ended += 1
                acc.handles.append(e.handle_s)
    if f.answered + counted_abandoned:
        f.service_level = f.answered_in_time / (f.answered + counted_abandoned)
    if f.answered + f.abandoned:
        f.abandonment = f.abandoned / (f.answered + f.abandoned)
    f.asa_s = _mean(acc.waits)
    f.aht_s = _mean(acc.handles)
    return f


def step_figures(steps: Iterable[StepTiming], now: float) -> list[StepFigures]:
    """Per approval level: open, overdue, and the median / p90 time of ended steps."""
    by_level: dict[str, StepFigures] = {}
    durations: dict[str, list[float]] = {}
    for s in steps:
        f = by_level.setdefault(s.level, StepFigures(level=s.level))
        if s.ended_at is None:
            f.open += 1
            if s.due_at < now:
                f.overdue += 1
            continue
        f.ended += 1
        if s.ended_at > s.due_at:
            f.overdue += 1
        durations.setdefault(s.level, []).append(s.ended_at - s.started_at)
    for level, f in by_level.items():
        f.median_s = percentile(durations.get(level, []), 50)
        f.p90_s = percentile(durations.get(level, []), 90)
    return [by_level[k] for k in sorted(by_level)]


def satisfaction(ratings: Iterable[RatingEvent]) -> SatisfactionFigures:
    f = SatisfactionFigures(counts={r.value: 0 for r in Rating})
    for r in ratings:
        f.ratings += 1
        f.counts[r.rating.value] += 1
    if f.ratings:
        f.satisfied_share = 1 - f.counts[Rating.DISSATISFIED.value] / f.ratings
    return f


def buckets(events: Iterable[VisitEvent], start: float, width_s: float, count: int
            ) -> dict[str, list[int]]:
    """Answered and abandoned per bucket of `width_s` from `start` (charts: hours, days)."""
    answered = [0] * count
    abandoned = [0] * count
    for e in events:
        i = math.floor((e.at - start) / width_s)
        if not 0 <= i < count:
            continue
        if e.kind == VisitKind.ANSWERED:
            answered[i] += 1
        elif e.kind in (VisitKind.ABANDONED, VisitKind.LEFT):
            abandoned[i] += 1
    return {"answered": answered, "abandoned": abandoned}


# --- reports: by item, village or clerk over a period ------------------------------------

ReportKey = str  # "item" | "village" | "clerk"


@dataclass(frozen=True)
class CaseTiming:
    """One case as the reports count it (from `cases`)."""

    item_code: str
    village: str
    clerk: str
    submitted_at: float
    due_at: float
    decided_at: float | None = None


class ReportRow(BaseModel):
    key: str
    visits: int = 0  # applicants who queued (by clerk: the calls answered)
    answered: int = 0
    abandoned: int = 0
    cases: int = 0
    done: int = 0
    done_rate: float | None = None  # 办结率
    on_time_rate: float | None = None  # of the done, decided by their due time
    aht_s: float | None = None
    asa_s: float | None = None
    ratings: int = 0
    satisfied_share: float | None = None


def _key(by: ReportKey, item: str, village: str, clerk: str) -> str:
    return {"item": item, "village": village, "clerk": clerk}[by]


def report_rows(visits: Iterable[VisitEvent], cases: Iterable[CaseTiming],
                rated: Iterable[RatingEvent], by: ReportKey) -> list[ReportRow]:
    """One row per item, village or clerk, sorted by key, plus nothing else (pure)."""
    visits = list(visits)
    rows: dict[str, ReportRow] = {}
    waits: dict[str, list[float]] = {}
    handles: dict[str, list[float]] = {}
    on_time: dict[str, int] = {}
    unhappy: dict[str, int] = {}
    call_key = {e.call_id: _key(by, e.item_code, e.village, e.clerk) for e in visits
                if e.kind == VisitKind.ANSWERED and e.call_id}

    def row(key: str) -> ReportRow:
        return rows.setdefault(key or "（未知）", ReportRow(key=key or "（未知）"))

    for e in visits:
        if e.kind == VisitKind.ENDED:
            k = call_key.get(e.call_id, _key(by, e.item_code, e.village, e.clerk))
            handles.setdefault(row(k).key, []).append(e.handle_s)
            continue
        if by == "clerk" and e.kind != VisitKind.ANSWERED:
            continue  # a wait is nobody's until a clerk answers it
        r = row(_key(by, e.item_code, e.village, e.clerk))
        if e.kind == VisitKind.JOINED:
            r.visits += 1
        elif e.kind == VisitKind.ANSWERED:
            r.answered += 1
            r.visits += by == "clerk"
            waits.setdefault(r.key, []).append(e.wait_s)
        elif e.kind in (VisitKind.ABANDONED, VisitKind.LEFT):
            r.abandoned += 1
    for c in cases:
        r = row(_key(by, c.item_code, c.village, c.clerk))
        r.cases += 1
        if c.decided_at is not None:
            r.done += 1
            on_time[r.key] = on_time.get(r.key, 0) + (c.decided_at <= c.due_at)
    for g in rated:
        r = row(_key(by, g.item_code, g.village, g.clerk))
        r.ratings += 1
        unhappy[r.key] = unhappy.get(r.key, 0) + (g.rating == Rating.DISSATISFIED)
    for k, r in rows.items():
        r.done_rate = r.done / r.cases if r.cases else None
        r.on_time_rate = on_time.get(k, 0) / r.done if r.done else None
        r.aht_s = _mean(handles.get(k, []))
        r.asa_s = _mean(waits.get(k, []))
        r.satisfied_share = 1 - unhappy.get(k, 0) / r.ratings if r.ratings else None
    return [rows[k] for k in sorted(rows)]

"""Retention rules (pure, `now` fed in): periods, legal holds, open 问题件."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from approval.retention_rules import Fate, Policy, Stored, decide, holds_from, unshared

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(recording_days=30, scan_days=90, verification_days=90)


def thing(kind: str, subject: str, age_days: float, case: str | None = None,
          call: str | None = None) -> Stored:
    return Stored(kind, subject, call or subject, (case,) if case else (),  # type: ignore[arg-type]
                  NOW - timedelta(days=age_days))


def test_each_kind_goes_after_its_own_period() -> None:
    things = [thing("recording", "c-old", 30.01), thing("recording", "c-young", 29.9),
              thing("scan", "s-old", 90.5, call="c-old"), thing("scan", "s-young", 45),
              thing("verification", "c-v", 91)]
    fates = {v.thing.subject: (v.fate, v.rule) for v in decide(things, holds_from([], []),
                                                                 POLICY, NOW)}
    assert fates == {"c-old": (Fate.DELETE, "recording-30d"),
                     "c-young": (Fate.YOUNG, "recording-30d"),
                     "s-old": (Fate.DELETE, "scan-90d"), "s-young": (Fate.YOUNG, "scan-90d"),
                     "c-v": (Fate.DELETE, "verification-90d")}


def test_moving_now_on_changes_the_verdict_without_waiting() -> None:
    young = [thing("recording", "c1", 10)]
    assert decide(young, holds_from([], []), POLICY, NOW)[0].fate == Fate.YOUNG
    later = NOW + timedelta(days=21)
    verdict = decide(young, holds_from([], []), POLICY, later)[0]
    assert verdict.fate == Fate.DELETE and verdict.due_at == NOW + timedelta(days=20)


def test_a_legal_hold_or_an_open_flag_keeps_everything_of_the_case() -> None:
    things = [thing("recording", "call-a", 40, case="CASE-A"),
              thing("scan", "scan-a", 100, case="CASE-A", call="call-a"),
              thing("recording", "call-b", 40), thing("scan", "scan-b", 100, call="call-b"),
              thing("recording", "call-c", 40, case="CASE-C")]
    holds = holds_from(legal=[("CASE-A", None, "诉讼中"), (None, "call-b", "投诉调查")],
                       open_flags=[("CASE-C", "call-c")])
    out = {v.thing.subject: (v.fate, v.rule) for v in decide(things, holds, POLICY, NOW)}
    assert out["call-a"] == (Fate.HELD, "冻结：诉讼中")
    assert out["scan-a"] == (Fate.HELD, "冻结：诉讼中")
    assert out["call-b"] == out["scan-b"] == (Fate.HELD, "冻结：投诉调查")
    assert out["call-c"] == (Fate.HELD, "问题件未关闭")


def test_a_deleted_page_leaves_the_files_a_newer_reuse_points_at() -> None:
    files = ["scans/c1/p.original.png", "scans/c1/p.flat.jpg", "scans/c1/p.thumb.jpg",
             "scans/c1/p.flat.jpg"]
    assert unshared(files, []) == files[:3]
    assert unshared(files, ["scans/c1/p.flat.jpg", "scans/c1/p.thumb.jpg"]) == [
        "scans/c1/p.original.png"]

"""Routing decisions as pure functions: eligibility, priority, FIFO, strategies, estimates."""

from __future__ import annotations

import random

from signaling.ratelimit import TokenBucket
from signaling.routing import (
    ClerkCandidate,
    WaitingApplicant,
    estimate_wait,
    is_eligible,
    pick_applicant,
    pick_clerk,
    plan_offers,
    queue_score,
)


def applicant(tid: str, item: str = "A", region: str = "420115", priority: bool = False,
              at: float = 0.0, offered: bool = False) -> WaitingApplicant:
    return WaitingApplicant(tid, item, region, priority, at, offered)


def clerk(name: str, skills: tuple[str, ...] = ("A",), juris: tuple[str, ...] = ("42",),
          region: str = "420115", idle: float = 0.0) -> ClerkCandidate:
    return ClerkCandidate(name, frozenset(skills), juris, region, idle)


def test_eligibility_needs_skill_jurisdiction_and_item_region() -> None:
    a = applicant("t1", "A", "420115")
    assert is_eligible(a, clerk("c"), [])
    assert not is_eligible(a, clerk("c", skills=("B",)), [])
    assert not is_eligible(a, clerk("c", juris=("43",)), [])  # 属地办理: wrong province
    assert is_eligible(a, clerk("c", juris=("4201",)), [])
    assert not is_eligible(a, clerk("c", region="430104"), ["42"])
    hunan = applicant("t2", "A", "430104")
    assert is_eligible(hunan, clerk("hn", juris=("43",), region="430104"), ["42", "43"])


def test_priority_first_then_first_come() -> None:
    assert queue_score(True, 500.0) < queue_score(False, 100.0)
    assert queue_score(False, 100.0) < queue_score(False, 200.0)
    waiting = [applicant("late", at=200), applicant("early", at=100),
               applicant("elder", at=300, priority=True)]
    assert pick_applicant(clerk("c"), waiting, {}) == waiting[2]
    assert pick_applicant(clerk("c"), waiting[:2], {}) == waiting[1]


def test_offered_and_ineligible_applicants_are_skipped() -> None:
    waiting = [applicant("a", at=1, offered=True), applicant("b", item="B", at=2),
               applicant("c", at=3)]
    assert pick_applicant(clerk("c"), waiting, {}) == waiting[2]
    assert pick_applicant(clerk("c", skills=("Z",)), waiting, {}) is None


def test_longest_idle_and_random_strategies() -> None:
    clerks = [clerk("new", idle=300), clerk("old", idle=100), clerk("mid", idle=200)]
    rng = random.Random(7)
    picked = pick_clerk(applicant("t"), clerks, [], "longest_idle", rng)
    assert picked is not None and picked.username == "old"
    seen = {c.username for c in (pick_clerk(applicant("t"), clerks, [], "random", rng)
                                 for _ in range(60)) if c}
    assert seen == {"new", "old", "mid"}
    assert pick_clerk(applicant("t", item="Z"), clerks, [], "longest_idle", rng) is None


def test_plan_offers_pairs_each_side_at_most_once() -> None:
    waiting = [applicant(f"t{i}", at=i) for i in range(5)]
    clerks = [clerk(f"c{i}", idle=i) for i in range(3)]
    plan = plan_offers(waiting, clerks, {}, "longest_idle", random.Random(1))
    assert [a.ticket_id for a, _ in plan] == ["t0", "t1", "t2"]
    assert [c.username for _, c in plan] == ["c0", "c1", "c2"]


def test_estimated_wait_uses_median_handle_time_and_staffing() -> None:
    assert estimate_wait(0, 2, [100.0], 300) == 0
    assert estimate_wait(1, 1, [], 300) == 300
    assert estimate_wait(4, 2, [60.0, 120.0, 6000.0], 300) == 240  # median 120, 2 clerks
    assert estimate_wait(3, 0, [60.0], 300) == 180  # nobody staffed: as if one clerk


def test_token_bucket_allows_burst_then_rate() -> None:
    b = TokenBucket(rate_per_s=2, burst=3)
    assert [b.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow(0.5) is True
    assert b.allow(0.5) is False

"""Routing decisions, pure: who may take whom, who goes first, which clerk gets the offer.

No Redis, no clock: callers pass `now` and the state they read. The Redis side
(`signaling.queue_store`) applies a decision atomically or reports that it went stale.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["longest_idle", "random"]

# Priority applicants sort before everyone who is not, whatever their arrival time.
_PRIORITY_OFFSET = 1e12


@dataclass(frozen=True)
class WaitingApplicant:
    ticket_id: str
    item_code: str
    handling_region: str
    priority: bool
    enqueued_at: float
    offered: bool = False


@dataclass(frozen=True)
class ClerkCandidate:
    username: str
    skills: frozenset[str]
    jurisdictions: tuple[str, ...]
    region_code: str
    idle_since: float


def queue_score(priority: bool, enqueued_at: float) -> float:
    """Sort key in the waiting queue: priority applicants first, then first come first served."""
    return enqueued_at if priority else enqueued_at + _PRIORITY_OFFSET


def covers(prefixes: Iterable[str], region: str) -> bool:
    return any(region.startswith(p) for p in prefixes)


def is_eligible(
    applicant: WaitingApplicant, clerk: ClerkCandidate, item_clerk_regions: Sequence[str]
) -> bool:
    """Right skill, the clerk's jurisdiction covers the handling region (属地办理), and the
    item allows clerks of the clerk's region (an empty list allows any region)."""
    return (
        applicant.item_code in clerk.skills
        and covers(clerk.jurisdictions, applicant.handling_region)
        and (not item_clerk_regions or covers(item_clerk_regions, clerk.region_code))
    )


def pick_clerk(
    applicant: WaitingApplicant,
    idle_clerks: Iterable[ClerkCandidate],
    item_clerk_regions: Sequence[str],
    strategy: Strategy,
    rng: random.Random,
) -> ClerkCandidate | None:
    """Among eligible idle clerks: the one idle longest, or one at random."""
    eligible = [c for c in idle_clerks if is_eligible(applicant, c, item_clerk_regions)]
    if not eligible:
        return None
    if strategy == "random":
        return rng.choice(eligible)
    return min(eligible, key=lambda c: (c.idle_since, c.username))


def eligible_in_order(
    clerk: ClerkCandidate,
    waiting: Iterable[WaitingApplicant],
    item_clerk_regions: Mapping[str, Sequence[str]],
) -> list[WaitingApplicant]:
    """Eligible applicants not already offered, in (priority, arrival) order."""
    eligible = [a for a in waiting if not a.offered
                and is_eligible(a, clerk, item_clerk_regions.get(a.item_code, ()))]
    return sorted(eligible, key=lambda a: queue_score(a.priority, a.enqueued_at))


def pick_applicant(
    clerk: ClerkCandidate,
    waiting: Iterable[WaitingApplicant],
    item_clerk_regions: Mapping[str, Sequence[str]],
) -> WaitingApplicant | None:
    """The first eligible applicant not already offered, in (priority, arrival) order."""
    ordered = eligible_in_order(clerk, waiting, item_clerk_regions)
    return ordered[0] if ordered else None


def plan_offers(
    waiting: Sequence[WaitingApplicant],
    idle_clerks: Sequence[ClerkCandidate],
    item_clerk_regions: Mapping[str, Sequence[str]],
    strategy: Strategy,
    rng: random.Random,
) -> list[tuple[WaitingApplicant, ClerkCandidate]]:
    """A full matching pass: applicants in queue order each take the clerk the strategy picks."""
    free = list(idle_clerks)
    plan: list[tuple[WaitingApplicant, ClerkCandidate]] = []
    for a in sorted(waiting, key=lambda w: queue_score(w.priority, w.enqueued_at)):
        if a.offered or not free:
            continue
        clerk = pick_clerk(a, free, item_clerk_regions.get(a.item_code, ()), strategy, rng)
        if clerk is not None:
            plan.append((a, clerk))
            free.remove(clerk)
    return plan


def estimate_wait(
    position: int, staffed_clerks: int, recent_handle_times: Sequence[float], default_s: float
) -> int:
    """Estimated wait in seconds: the queue drains at `staffed / handle time` per second.

    The handle time is the median of recent calls of the item (robust to one long call);
    with nobody staffed the figure assumes one clerk rather than showing nothing.
    """
    if position <= 0:
        return 0
    times = sorted(recent_handle_times)
    handle = times[len(times) // 2] if times else default_s
    return round(position * handle / max(staffed_clerks, 1))

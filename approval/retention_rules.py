"""Retention rules (pure): what may be deleted now, what is held, what is still young.

Recordings go 30 days after their call, scans (document pages too: their original and
flattened files) and verification images 90 days after they
were taken (the days come from settings). A legal hold on a case or a recording, or an
open 问题件 of the case, keeps everything of that case and its call. The audit log and the
QA access log are never deleted here: they are kept at least `retention_audit_days`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

Kind = Literal["recording", "scan", "verification"]


class Fate(StrEnum):
    DELETE = "delete"
    HELD = "held"  # old enough, but a hold keeps it
    YOUNG = "young"


@dataclass(frozen=True)
class Policy:
    recording_days: float
    scan_days: float
    verification_days: float

    def days(self, kind: Kind) -> float:
        return {"recording": self.recording_days, "scan": self.scan_days,
                "verification": self.verification_days}[kind]


@dataclass(frozen=True)
class Stored:
    """One thing under the storage root that a rule may delete, and what it belongs to."""

    kind: Kind
    subject: str  # call id (recording, verification images) or scan id
    call_id: str | None
    case_nos: tuple[str, ...]
    since: datetime  # when its retention period began (the call's end, the capture)


@dataclass(frozen=True)
class Holds:
    """Cases and calls nothing may be deleted of, each with why (for the dry run)."""

    cases: dict[str, str]
    calls: dict[str, str]

    def reason(self, thing: Stored) -> str | None:
        for case_no in thing.case_nos:
            if case_no in self.cases:
                return self.cases[case_no]
        if thing.call_id is not None and thing.call_id in self.calls:
            return self.calls[thing.call_id]
        return None


@dataclass(frozen=True)
class Verdict:
    thing: Stored
    fate: Fate
    rule: str  # e.g. "recording-30d", or why it is held
    due_at: datetime


def rule_name(kind: Kind, days: float) -> str:
    return f"{kind}-{days:g}d"


def decide(things: Iterable[Stored], holds: Holds, policy: Policy,
           now: datetime) -> list[Verdict]:
    out = []
    for thing in things:
        days = policy.days(thing.kind)
        due = thing.since + timedelta(days=days)
        if due > now:
            out.append(Verdict(thing, Fate.YOUNG, rule_name(thing.kind, days), due))
            continue
        held = holds.reason(thing)
        if held is not None:
            out.append(Verdict(thing, Fate.HELD, held, due))
        else:
            out.append(Verdict(thing, Fate.DELETE, rule_name(thing.kind, days), due))
    return out


def holds_from(legal: Iterable[tuple[str | None, str | None, str]],
               open_flags: Iterable[tuple[str | None, str | None]]) -> Holds:
    """Holds from the active legal holds (case, call, reason) and the open 问题件."""
    cases: dict[str, str] = {}
    calls: dict[str, str] = {}
    for case_no, call_id, reason in legal:
        if case_no:
            cases[case_no] = f"冻结：{reason}"
        if call_id:
            calls[call_id] = f"冻结：{reason}"
    for case_no, call_id in open_flags:
        if case_no:
            cases.setdefault(case_no, "问题件未关闭")
        if call_id:
            calls.setdefault(call_id, "问题件未关闭")
    return Holds(cases, calls)


def unshared(files: Iterable[str], still_used: Iterable[str]) -> list[str]:
    """The files of a deleted scan that may go: a reused page (证照重复使用) is a newer row
    pointing at the same files, and its own 90 days have not run out with the old row's."""
    keep = set(still_used)
    return [name for name in dict.fromkeys(files) if name and name not in keep]

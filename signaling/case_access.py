"""Object-level rules for cases: who sees which case, how much of it, and who may change it.

Pure decisions over the case's facts and the caller's session. A terminal sees the result
of its own cases; a clerk the cases they handled (whole) and those of calls they joined
(masked); a reviewer those of their groups (whole, to review them); QA every case, whole,
with a stated purpose that is logged; an administrator every case, masked. Only the clerk
who handled a case changes it (resubmit, materials arrived).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.pii import mask_id_number, mask_phone
from signaling.auth import Session

View = Literal["none", "result", "masked", "whole"]
PURPOSE_MAX = 100


@dataclass(frozen=True)
class CaseFacts:
    case_no: str
    terminal_id: str
    clerk: str
    call_clerks: tuple[str, ...]
    groups: frozenset[str]  # every review group of its plan

    @classmethod
    def of(cls, case: dict[str, Any], groups: set[str]) -> CaseFacts:
        return cls(str(case["case_no"]), str(case["terminal_id"]), str(case["clerk"]),
                   tuple(case.get("call_clerks") or ()), frozenset(groups))


def case_view(session: Session, facts: CaseFacts) -> View:
    """How much of the case the caller may see ("none": as if it did not exist)."""
    who = session.who
    if session.role == "terminal":
        return "result" if facts.terminal_id == who else "none"
    if session.role == "clerk":
        if who == facts.clerk:
            return "whole"
        return "masked" if who in facts.call_clerks else "none"
    if session.role == "reviewer":
        return "whole" if facts.groups & set(session.review_groups) else "none"
    if session.role == "qa":
        return "whole"
    if session.role == "admin":
        return "masked"
    return "none"


def may_change(session: Session, facts: CaseFacts) -> bool:
    """Resubmitting or marking materials arrived: the case's own clerk only."""
    return session.role == "clerk" and session.who == facts.clerk


def may_see_scans(session: Session, view: View) -> bool:
    """Scans are ID cards and documents: never to a terminal or an administrator."""
    return view in ("masked", "whole") and session.role != "admin"


def needs_purpose(session: Session) -> bool:
    """QA states why it opens a person's file; the purpose goes into the audit log."""
    return session.role == "qa"


def masked(case: dict[str, Any]) -> dict[str, Any]:
    return {**case, "id_number": mask_id_number(str(case["id_number"])),
            "phone": mask_phone(str(case["phone"]))}

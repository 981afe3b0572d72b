"""Server → client messages of the approval flow (pydantic, with a `type` literal)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CaseResult(BaseModel):
    """Tells the applicant's terminal what became of its case."""

    type: Literal["case_result"] = "case_result"
    case_no: str
    status: str
    status_name: str
    reason: str = ""
    certificate_no: str | None = None
    certificate_url: str | None = None  # the terminal fetches and prints this PDF


class ReviewTaskAssigned(BaseModel):
    """Tells a reviewer's page that a task was assigned to them (办件随机分配)."""

    type: Literal["review_task"] = "review_task"
    case_no: str
    group: str
    seq: int


class StepOverdue(BaseModel):
    """Tells a review group's lead that a step of the group is past its due time (督办)."""

    type: Literal["step_overdue"] = "step_overdue"
    case_no: str
    group: str
    seq: int
    due_at: str


class CaseSubmitted(BaseModel):
    """Tells the terminal, right after the clerk submits, what happens next (its slip)."""

    type: Literal["case_submitted"] = "case_submitted"
    case_no: str
    item_name: str
    outcome: str  # 稍等片刻 | 现场开单 | 当面说清 | 放心回家
    missing_materials: list[str]
    promise_date: str | None
    date: str  # the day of the visit, ISO
    qr_url: str  # same-origin SVG of the case number

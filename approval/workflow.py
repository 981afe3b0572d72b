"""The case workflow as a pure state machine: `now` comes in, a new state and effects go out.

受理 → review steps (village → town → district, 会签 "all" / 或签 "any") → approved,
rejected or returned for correction (the clock pauses) → certificate issued → delivered →
archived. 容缺: only non-core materials may be missing; the result is withheld until they
arrive and the case is terminated when the promise date passes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from approval.calendar import WorkCalendar

Level = Literal["village", "town", "district"]
Mode = Literal["single", "all", "any"]
Merge = Literal["accept_review", "review_approve"]
ReviewDecision = Literal["approve", "reject", "return"]
CaseStatus = Literal[
    "in_review", "returned", "awaiting_materials", "approved", "rejected", "terminated",
    "certified", "delivered", "archived",
]
StepOutcome = Literal["approved", "rejected", "returned"]

LEVEL_ORDER: dict[str, int] = {"village": 0, "town": 1, "district": 2}
STATUS_NAMES: dict[str, str] = {
    "in_review": "审查中", "returned": "退回补正", "awaiting_materials": "待补齐材料",
    "approved": "已办结（准予）", "rejected": "不予许可", "terminated": "已终止",
    "certified": "已出证", "delivered": "已打印交付", "archived": "已归档",
}


class InvalidTransition(ValueError):
    """The event does not apply to the case in its current state; the message is Chinese."""


class StepConfig(BaseModel):
    level: Level
    groups: list[str] = Field(min_length=1)
    mode: Mode = "single"


class WorkflowConfig(BaseModel):
    """An item's review configuration, as stored in `service_items.workflow`."""

    steps: list[StepConfig] = Field(min_length=1)
    # accept_review: 受理即审查, the clerk's acceptance is the first review step;
    # review_approve: 审核即审批, the last two steps merge into the last one.
    merge: list[Merge] = Field(default_factory=list)


class CaseMaterial(BaseModel):
    name: str
    core: bool
    provided: bool


class Vote(BaseModel):
    group: str
    reviewer: str
    decision: ReviewDecision
    comment: str = ""
    at: datetime


class StepRun(BaseModel):
    """One run of one review step; a resubmitted case runs the step again with a new seq."""

    seq: int
    index: int
    level: Level
    groups: list[str]
    mode: Mode
    started_at: datetime
    due_at: datetime
    ended_at: datetime | None = None
    outcome: StepOutcome | None = None
    votes: list[Vote] = Field(default_factory=list)
    escalated: bool = False

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def open_groups(self) -> list[str]:
        if self.ended_at is not None:
            return []
        voted = {v.group for v in self.votes}
        return [g for g in self.groups if g not in voted]


class CaseState(BaseModel):
    case_no: str
    status: CaseStatus
    plan: list[StepConfig]
    steps: list[StepRun] = Field(default_factory=list)
    submitted_at: datetime
    due_at: datetime
    time_limit_days: int
    materials: list[CaseMaterial]
    promise_date: date | None = None
    returned_at: datetime | None = None
    paused_s: float = 0.0
    return_reason: str = ""
    decided_at: datetime | None = None
    certificate_no: str | None = None
    delivered_at: datetime | None = None

    @property
    def current(self) -> StepRun | None:
        return self.steps[-1] if self.steps and self.steps[-1].ended_at is None else None

    def missing(self) -> list[str]:
        return [m.name for m in self.materials if not m.provided]


# --- effects: what the I/O side must do after a transition ------------------------------


@dataclass(frozen=True)
class OpenTasks:
    """Put one task per group of the step into that group's work stream."""

    seq: int
    groups: tuple[str, ...]


@dataclass(frozen=True)
class CancelTasks:
    """Tasks of a step that ended before every group decided (或签, or a 会签 rejection)."""

    seq: int
    groups: tuple[str, ...]


@dataclass(frozen=True)
class NotifyApplicant:
    status: CaseStatus
    reason: str = ""


@dataclass(frozen=True)
class IssueCertificate:
    pass


@dataclass(frozen=True)
class Escalate:
    seq: int
    groups: tuple[str, ...]


Effect = OpenTasks | CancelTasks | NotifyApplicant | IssueCertificate | Escalate


@dataclass(frozen=True)
class Transition:
    state: CaseState
    effects: tuple[Effect, ...]


# --- planning ---------------------------------------------------------------------------


def plan_steps(config: WorkflowConfig) -> list[StepConfig]:
    """The review steps a case actually runs, after merges; levels must not go down."""
    steps = list(config.steps)
    for a, b in itertools.pairwise(steps):
        if LEVEL_ORDER[b.level] < LEVEL_ORDER[a.level]:
            raise InvalidTransition("审查层级必须由低到高：村 → 乡镇 → 区县")
    if "accept_review" in config.merge and len(steps) > 1:
        steps = steps[1:]
    if "review_approve" in config.merge and len(steps) > 1:
        steps = [*steps[:-2], steps[-1]]
    return steps


def step_due(calendar: WorkCalendar, start: datetime, time_limit_days: int,
             n_steps: int) -> datetime:
    """Each step gets an equal share of the item's time limit, at least one working day."""
    return calendar.add_working_days(start, max(1, math.floor(time_limit_days / n_steps)))


def _start_step(state: CaseState, index: int, now: datetime,
                calendar: WorkCalendar) -> tuple[CaseState, OpenTasks]:
    cfg = state.plan[index]
    seq = len(state.steps) + 1
    run = StepRun(seq=seq, index=index, level=cfg.level, groups=list(cfg.groups), mode=cfg.mode,
                  started_at=now,
                  due_at=step_due(calendar, now, state.time_limit_days, len(state.plan)))
    new = state.model_copy(update={"steps": [*state.steps, run], "status": "in_review"})
    return new, OpenTasks(seq, tuple(cfg.groups))


# --- events -----------------------------------------------------------------------------


def submit(case_no: str, config: WorkflowConfig, time_limit_days: int,
           materials: list[CaseMaterial], promise_date: date | None, now: datetime,
           calendar: WorkCalendar) -> Transition:
    """受理: the clerk submits the case and the first review step opens."""
    missing_core = [m.name for m in materials if m.core and not m.provided]
    if missing_core:
        raise InvalidTransition("核心材料不能容缺：" + "、".join(missing_core))
    if any(not m.provided for m in materials):
        if promise_date is None:
            raise InvalidTransition("容缺受理须填写申请人承诺补齐材料的日期")
        if promise_date < now.date():
            raise InvalidTransition("承诺补齐日期不能早于今天")
    else:
        promise_date = None
    state = CaseState(case_no=case_no, status="in_review", plan=plan_steps(config),
                      submitted_at=now, due_at=calendar.add_working_days(now, time_limit_days),
                      time_limit_days=time_limit_days, materials=materials,
                      promise_date=promise_date)
    state, tasks = _start_step(state, 0, now, calendar)
    return Transition(state, (tasks,))


def _step_outcome(run: StepRun) -> StepOutcome | None:
    decisions = [v.decision for v in run.votes]
    if run.mode in ("single", "any") and decisions:
        first = decisions[0]
        return "approved" if first == "approve" else ("rejected" if first == "reject"
                                                     else "returned")
    if "reject" in decisions:
        return "rejected"
    if "return" in decisions:
        return "returned"
    if len(decisions) == len(run.groups):
        return "approved"
    return None


def decide(state: CaseState, group: str, reviewer: str, decision: ReviewDecision, comment: str,
           now: datetime, calendar: WorkCalendar) -> Transition:
    """A reviewer of `group` decides on the current step."""
    run = state.current
    if state.status != "in_review" or run is None:
        raise InvalidTransition(f"案件当前状态为“{STATUS_NAMES[state.status]}”，不能审查")
    if group not in run.open_groups():
        raise InvalidTransition("该部门不在本环节待审之列，或已作出决定")
    if decision in ("reject", "return") and not comment.strip():
        raise InvalidTransition("不予许可或退回补正必须填写理由")
    if run.mode == "all" and any(v.reviewer == reviewer for v in run.votes):
        raise InvalidTransition("会签须由各部门的不同人员分别审查，您已代表其他部门签过")
    vote = Vote(group=group, reviewer=reviewer, decision=decision, comment=comment, at=now)
    run = run.model_copy(update={"votes": [*run.votes, vote]})
    outcome = _step_outcome(run)
    if outcome is None:
        return Transition(_replace_current(state, run), ())
    run = run.model_copy(update={"ended_at": now, "outcome": outcome})
    effects: list[Effect] = []
    left = tuple(g for g in run.groups if g not in {v.group for v in run.votes})
    if left:
        effects.append(CancelTasks(run.seq, left))
    state = _replace_current(state, run)
    if outcome == "rejected":
        state = state.model_copy(update={"status": "rejected", "decided_at": now})
        effects.append(NotifyApplicant("rejected", comment))
    elif outcome == "returned":
        state = state.model_copy(update={"status": "returned", "returned_at": now,
                                         "return_reason": comment})
        effects.append(NotifyApplicant("returned", comment))
    elif run.index + 1 < len(state.plan):
        state, tasks = _start_step(state, run.index + 1, now, calendar)
        effects.append(tasks)
    else:
        state, more = _final_approval(state, now)
        effects.extend(more)
    return Transition(state, tuple(effects))


def _replace_current(state: CaseState, run: StepRun) -> CaseState:
    return state.model_copy(update={"steps": [*state.steps[:-1], run]})


def _final_approval(state: CaseState, now: datetime) -> tuple[CaseState, list[Effect]]:
    if state.missing():
        # 容缺: approved, but the result is withheld until the promised materials arrive.
        return state.model_copy(update={"status": "awaiting_materials", "decided_at": now}), [
            NotifyApplicant("awaiting_materials", "审批已通过，请在承诺日期前补齐："
                            + "、".join(state.missing()))]
    return state.model_copy(update={"status": "approved", "decided_at": now}), [
        NotifyApplicant("approved"), IssueCertificate()]


def resubmit(state: CaseState, now: datetime, calendar: WorkCalendar) -> Transition:
    """The clerk corrected a returned case: the same step runs again; paused time is added."""
    if state.status != "returned" or state.returned_at is None:
        raise InvalidTransition("只有退回补正的案件可以重新提交")
    paused = (now - state.returned_at).total_seconds()
    index = state.steps[-1].index
    state = state.model_copy(update={
        "paused_s": state.paused_s + paused, "returned_at": None, "return_reason": "",
        "due_at": state.due_at + (now - state.returned_at)})
    state, tasks = _start_step(state, index, now, calendar)
    return Transition(state, (tasks,))


def materials_arrived(state: CaseState, names: list[str], now: datetime) -> Transition:
    """Promised (容缺) materials were handed in; a withheld result is released."""
    if state.status in ("rejected", "terminated", "archived"):
        raise InvalidTransition(f"案件已{STATUS_NAMES[state.status]}，不再收取材料")
    unknown = set(names) - set(state.missing())
    if unknown:
        raise InvalidTransition("这些材料不在待补齐清单中：" + "、".join(sorted(unknown)))
    materials = [m.model_copy(update={"provided": True}) if m.name in names else m
                 for m in state.materials]
    state = state.model_copy(update={"materials": materials})
    if state.status == "awaiting_materials" and not state.missing():
        state = state.model_copy(update={"status": "approved"})
        return Transition(state, (NotifyApplicant("approved"), IssueCertificate()))
    return Transition(state, ())


def tick(state: CaseState, now: datetime) -> Transition:
    """Time passes: promised materials past their date end the case; late steps escalate."""
    effects: list[Effect] = []
    live = state.status in ("in_review", "returned", "awaiting_materials")
    if live and state.promise_date is not None and state.missing() \
            and now.date() > state.promise_date:
        run = state.current
        if run is not None:
            effects.append(CancelTasks(run.seq, tuple(run.open_groups())))
            run = run.model_copy(update={"ended_at": now})
            state = _replace_current(state, run)
        state = state.model_copy(update={"status": "terminated", "decided_at": now})
        effects.append(NotifyApplicant("terminated", "未在承诺日期前补齐材料，办件终止"))
        return Transition(state, tuple(effects))
    run = state.current
    if state.status == "in_review" and run is not None and not run.escalated \
            and now > run.due_at:
        run = run.model_copy(update={"escalated": True})
        return Transition(_replace_current(state, run), (Escalate(run.seq,
                                                                  tuple(run.open_groups())),))
    return Transition(state, ())


def issue_certificate(state: CaseState, certificate_no: str) -> Transition:
    if state.status != "approved":
        raise InvalidTransition("只有已准予的案件可以出证")
    return Transition(state.model_copy(update={"status": "certified",
                                               "certificate_no": certificate_no}), ())


def deliver(state: CaseState, now: datetime) -> Transition:
    """The village terminal printed the certificate."""
    if state.status != "certified":
        raise InvalidTransition("证照尚未签发，无法交付")
    return Transition(state.model_copy(update={"status": "delivered", "delivered_at": now}), ())


def archive(state: CaseState) -> Transition:
    if state.status not in ("delivered", "rejected", "terminated"):
        raise InvalidTransition(f"案件当前状态为“{STATUS_NAMES[state.status]}”，不能归档")
    return Transition(state.model_copy(update={"status": "archived"}), ())


def working_seconds_open(state: CaseState, now: datetime) -> float:
    """Elapsed time since submission, not counting time spent returned for correction."""
    paused = state.paused_s
    if state.returned_at is not None:
        paused += (now - state.returned_at).total_seconds()
    end = state.decided_at if state.decided_at is not None else now
    return (end - state.submitted_at).total_seconds() - paused

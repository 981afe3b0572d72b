"""The pure case workflow: every path a case can take, with time passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from approval import workflow as wf
from approval.calendar import WorkCalendar

MON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
CAL = WorkCalendar.parse("2026-11-26")  # one holiday on the Thursday


def cfg(*steps: tuple[str, list[str], str], merge: list[str] | None = None) -> wf.WorkflowConfig:
    return wf.WorkflowConfig.model_validate(
        {"steps": [{"level": lv, "groups": g, "mode": m} for lv, g, m in steps],
         "merge": merge or []})


def mats(*missing: str) -> list[wf.CaseMaterial]:
    names = [("身份证", True), ("户口簿", True), ("银行卡", False), ("收入证明", False)]
    return [wf.CaseMaterial(name=n, core=c, provided=n not in missing) for n, c in names]


def start(config: wf.WorkflowConfig, missing: tuple[str, ...] = (),
          promise: date | None = None) -> wf.Transition:
    return wf.submit("C1", config, 10, mats(*missing), promise, MON, CAL)


def approve(state: wf.CaseState, group: str, at: datetime = MON) -> wf.Transition:
    return wf.decide(state, group, "r-" + group, "approve", "", at, CAL)


def test_calendar_skips_weekends_and_holidays_and_counts_makeup_days() -> None:
    assert CAL.add_working_days(MON, 3).date() == date(2026, 11, 27)  # Thu is a holiday
    cal = WorkCalendar.parse("", "2026-11-28")  # Saturday worked (调休)
    assert cal.add_working_days(datetime(2026, 11, 27, tzinfo=UTC), 1).date() == date(2026, 11, 28)


def test_single_level_approved_issues_certificate() -> None:
    t = start(cfg(("town", ["town-civil-affairs"], "single")))
    assert t.effects == (wf.OpenTasks(1, ("town-civil-affairs",)),)
    t = approve(t.state, "town-civil-affairs", MON + timedelta(hours=2))
    assert t.state.status == "approved"
    assert wf.IssueCertificate() in t.effects
    assert t.state.steps[0].duration_s == 7200
    t = wf.issue_certificate(t.state, "E1")
    t = wf.deliver(t.state, MON + timedelta(hours=3))
    assert wf.archive(t.state).state.status == "archived"


def test_three_levels_run_in_order() -> None:
    t = start(cfg(("village", ["v"], "single"), ("town", ["t"], "single"),
                  ("district", ["d"], "single")))
    opened = []
    for group in ("v", "t", "d"):
        t = approve(t.state, group)
        opened += [e.groups for e in t.effects if isinstance(e, wf.OpenTasks)]
    assert opened == [("t",), ("d",)]
    assert t.state.status == "approved"
    assert [s.level for s in t.state.steps] == ["village", "town", "district"]


def test_joint_review_all_needs_every_department() -> None:
    t = start(cfg(("town", ["a", "b"], "all")))
    t = approve(t.state, "a")
    assert t.state.status == "in_review" and t.effects == ()
    with pytest.raises(wf.InvalidTransition):
        approve(t.state, "a")  # the same department cannot decide twice
    t = approve(t.state, "b")
    assert t.state.status == "approved"


def test_joint_review_all_one_rejection_rejects_and_cancels_the_rest() -> None:
    t = start(cfg(("town", ["a", "b", "c"], "all")))
    t = approve(t.state, "a")
    t = wf.decide(t.state, "b", "rb", "reject", "不符合条件", MON, CAL)
    assert t.state.status == "rejected"
    assert wf.CancelTasks(1, ("c",)) in t.effects
    assert wf.NotifyApplicant("rejected", "不符合条件") in t.effects


def test_joint_review_any_first_decision_wins() -> None:
    t = start(cfg(("town", ["a", "b"], "any")))
    t = approve(t.state, "b")
    assert t.state.status == "approved"
    assert wf.CancelTasks(1, ("a",)) in t.effects


def test_return_pauses_the_clock_and_resubmit_reruns_the_step() -> None:
    t = start(cfg(("town", ["t"], "single"), ("district", ["d"], "single")))
    t = approve(t.state, "t")
    due = t.state.due_at
    t = wf.decide(t.state, "d", "rd", "return", "收入证明不清晰", MON + timedelta(hours=1), CAL)
    assert t.state.status == "returned" and t.state.return_reason == "收入证明不清晰"
    with pytest.raises(wf.InvalidTransition):
        approve(t.state, "d")
    back = MON + timedelta(hours=25)
    t = wf.resubmit(t.state, back, CAL)
    assert t.effects == (wf.OpenTasks(3, ("d",)),)
    assert t.state.paused_s == 24 * 3600 and t.state.due_at == due + timedelta(hours=24)
    t = approve(t.state, "d", back + timedelta(hours=1))
    assert t.state.status == "approved"
    assert wf.working_seconds_open(t.state, back + timedelta(days=9)) == 2 * 3600


def test_missing_core_material_is_refused() -> None:
    with pytest.raises(wf.InvalidTransition, match="核心材料不能容缺"):
        start(cfg(("town", ["t"], "single")), ("户口簿",), date(2026, 11, 30))
    with pytest.raises(wf.InvalidTransition, match="承诺"):
        start(cfg(("town", ["t"], "single")), ("银行卡",), None)


def test_rongque_result_withheld_until_materials_arrive() -> None:
    t = start(cfg(("town", ["t"], "single")), ("银行卡",), date(2026, 11, 30))
    t = approve(t.state, "t")
    assert t.state.status == "awaiting_materials"
    assert wf.IssueCertificate() not in t.effects
    t = wf.materials_arrived(t.state, ["银行卡"], MON + timedelta(days=2))
    assert t.state.status == "approved" and wf.IssueCertificate() in t.effects


def test_rongque_expired_terminates_the_case() -> None:
    t = start(cfg(("town", ["t"], "single")), ("银行卡",), date(2026, 11, 24))
    assert wf.tick(t.state, MON + timedelta(days=1)).state.status == "in_review"
    t = wf.tick(t.state, MON + timedelta(days=2))
    assert t.state.status == "terminated"
    assert wf.CancelTasks(1, ("t",)) in t.effects
    with pytest.raises(wf.InvalidTransition):
        approve(t.state, "t")


def test_overdue_step_escalates_once() -> None:
    t = start(cfg(("town", ["t"], "single")))
    late = t.state.steps[0].due_at + timedelta(minutes=1)
    t = wf.tick(t.state, late)
    assert t.effects == (wf.Escalate(1, ("t",)),)
    assert wf.tick(t.state, late).effects == ()


def test_merges_accept_review_and_review_approve() -> None:
    three = (("village", ["v"], "single"), ("town", ["t"], "single"),
             ("district", ["d"], "single"))
    assert [s.level for s in wf.plan_steps(cfg(*three, merge=["accept_review"]))] == \
        ["town", "district"]
    assert [s.level for s in wf.plan_steps(cfg(*three, merge=["review_approve"]))] == \
        ["village", "district"]
    with pytest.raises(wf.InvalidTransition):
        wf.plan_steps(cfg(("district", ["d"], "single"), ("town", ["t"], "single")))


def test_invalid_transitions_are_refused() -> None:
    t = start(cfg(("town", ["t"], "single")))
    with pytest.raises(wf.InvalidTransition):
        wf.decide(t.state, "t", "r", "reject", " ", MON, CAL)  # a rejection needs a reason
    with pytest.raises(wf.InvalidTransition):
        approve(t.state, "other")
    with pytest.raises(wf.InvalidTransition):
        wf.issue_certificate(t.state, "E1")
    with pytest.raises(wf.InvalidTransition):
        wf.deliver(t.state, MON)
    with pytest.raises(wf.InvalidTransition):
        wf.archive(t.state)
    with pytest.raises(wf.InvalidTransition):
        wf.resubmit(t.state, MON, CAL)


def test_state_round_trips_through_json() -> None:
    t = start(cfg(("town", ["a", "b"], "all")), ("银行卡",), date(2026, 11, 30))
    t = approve(t.state, "a")
    again = wf.CaseState.model_validate_json(t.state.model_dump_json())
    assert again == t.state

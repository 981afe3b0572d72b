"""问题件: a flagged case or moment of a recording, and the steps it must go through.

标记 → 指派 → 整改 → 复核 → 关闭. A 复核 that fails sends it back to 整改 (assigned again);
a flag found groundless may be closed straight from 标记 with a note. Until it is closed,
a 问题件 holds its case against deletion (retention). Pure: the store records who and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class FlagState(StrEnum):
    MARKED = "marked"
    ASSIGNED = "assigned"
    RECTIFIED = "rectified"
    RECHECKED = "rechecked"
    CLOSED = "closed"


STATE_NAMES: dict[FlagState, str] = {
    FlagState.MARKED: "标记", FlagState.ASSIGNED: "指派", FlagState.RECTIFIED: "整改",
    FlagState.RECHECKED: "复核", FlagState.CLOSED: "关闭",
}
OPEN_STATES: frozenset[str] = frozenset(s.value for s in FlagState if s != FlagState.CLOSED)

FlagAction = Literal["assign", "rectify", "recheck", "close"]


class FlagRefused(ValueError):
    """The step is not possible now; the message is for the person (Chinese)."""


@dataclass(frozen=True)
class FlagStep:
    action: FlagAction
    note: str = ""
    assignee: str | None = None
    passed: bool | None = None  # for 复核


def advance(state: FlagState, step: FlagStep) -> FlagState:
    """The state after `step`, or FlagRefused saying why not."""
    note = step.note.strip()
    if step.action == "assign":
        if state not in (FlagState.MARKED, FlagState.ASSIGNED):
            raise FlagRefused("只有刚标记或已指派的问题件可以指派")
        if not step.assignee:
            raise FlagRefused("请填写整改责任人")
        return FlagState.ASSIGNED
    if step.action == "rectify":
        if state != FlagState.ASSIGNED:
            raise FlagRefused("问题件尚未指派，不能登记整改")
        if not note:
            raise FlagRefused("请写明整改情况")
        return FlagState.RECTIFIED
    if step.action == "recheck":
        if state != FlagState.RECTIFIED:
            raise FlagRefused("整改完成后才能复核")
        if step.passed is None:
            raise FlagRefused("请选择复核结果：通过或不通过")
        if not step.passed and not note:
            raise FlagRefused("复核不通过时请写明原因")
        return FlagState.RECHECKED if step.passed else FlagState.ASSIGNED
    if state == FlagState.RECHECKED:
        return FlagState.CLOSED
    if state == FlagState.MARKED:
        if not note:
            raise FlagRefused("未经整改直接关闭时，请写明理由（如：经核实无问题）")
        return FlagState.CLOSED
    raise FlagRefused("复核通过后才能关闭")

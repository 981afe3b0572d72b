"""The 问题件 steps (pure): 标记 → 指派 → 整改 → 复核 → 关闭, and the refusals."""

from __future__ import annotations

import pytest

from core.qa_flags import OPEN_STATES, FlagRefused, FlagState, FlagStep, advance


def test_the_whole_way_and_back_to_rectification() -> None:
    s = advance(FlagState.MARKED, FlagStep("assign", assignee="clerk1"))
    assert s == FlagState.ASSIGNED
    s = advance(s, FlagStep("rectify", note="已重新告知材料清单"))
    assert s == FlagState.RECTIFIED
    # A failed 复核 sends it back to the person responsible.
    assert advance(s, FlagStep("recheck", passed=False, note="仍未告知")) == FlagState.ASSIGNED
    s = advance(s, FlagStep("recheck", passed=True))
    assert s == FlagState.RECHECKED
    assert advance(s, FlagStep("close")) == FlagState.CLOSED
    assert FlagState.CLOSED.value not in OPEN_STATES and "rechecked" in OPEN_STATES


@pytest.mark.parametrize(("state", "step", "words"), [
    (FlagState.MARKED, FlagStep("assign"), "责任人"),
    (FlagState.MARKED, FlagStep("rectify", note="x"), "尚未指派"),
    (FlagState.ASSIGNED, FlagStep("rectify"), "整改情况"),
    (FlagState.ASSIGNED, FlagStep("recheck", passed=True), "整改完成后"),
    (FlagState.RECTIFIED, FlagStep("recheck"), "通过或不通过"),
    (FlagState.RECTIFIED, FlagStep("recheck", passed=False), "原因"),
    (FlagState.ASSIGNED, FlagStep("close"), "复核通过后"),
    (FlagState.MARKED, FlagStep("close"), "理由"),
    (FlagState.CLOSED, FlagStep("assign", assignee="clerk1"), "指派"),
])
def test_a_step_out_of_order_is_refused_in_plain_words(state: FlagState, step: FlagStep,
                                                       words: str) -> None:
    with pytest.raises(FlagRefused) as refused:
        advance(state, step)
    assert words in str(refused.value)


def test_a_groundless_flag_closes_with_a_note() -> None:
    assert advance(FlagState.MARKED, FlagStep("close", note="经核实无问题")) == FlagState.CLOSED

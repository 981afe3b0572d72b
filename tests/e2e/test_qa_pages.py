"""The QA page end to end in Debian's Chromium, in a loopback-only namespace: search, a
purpose, the replay playing with the viewer's name burned into the picture, seeking, the
access log's row; clerks and terminals refused on every QA route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from media.viewer_mark import ViewerMark
from tests.e2e.run import run_scenario
from tests.qa.marks import name_similarity

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def qa_visit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scenario("qa_scenario", tmp_path_factory.mktemp("e2e-qa"), 180)


def test_qa_searches_gives_a_purpose_and_the_video_plays(qa_visit: dict[str, Any]) -> None:
    assert qa_visit["page_info"] == "第 1 / 1 页，共 1 条"
    assert "江夏区五里界街道童周岭村" in qa_visit["search_row"]
    assert "放心回家" in qa_visit["search_row"] and "通过" in qa_visit["search_row"]
    assert qa_visit["integrity"] == "录像完整，未被篡改"
    assert qa_visit["player_hidden_before_purpose"]  # no picture before a purpose
    assert qa_visit["frames_seen"] >= 25  # frames advance
    assert qa_visit["click_to_first_frame_s"] < 3.0
    assert qa_visit["played_to_s"] >= 6.5  # sought past what was first loaded


def test_the_viewers_name_is_in_the_picture(qa_visit: dict[str, Any]) -> None:
    frame = Image.open(Path(qa_visit["out"]) / "replay-frame.png").convert("L")
    luma = np.asarray(frame, dtype=np.uint8)
    assert luma.shape == (540, 960)
    mine = name_similarity(luma, ViewerMark("质检员 赵磊", "qa1"))
    other = name_similarity(luma, ViewerMark("系统管理员", "admin"))
    assert mine > 0.5 and mine > other + 0.25, (mine, other)


def test_the_access_log_has_the_row(qa_visit: dict[str, Any]) -> None:
    row = qa_visit["access_row"]
    assert row is not None
    assert (row["viewer"], row["kind"], row["purpose"]) == ("qa1", "replay", "抽查")
    assert row["case_no"] == qa_visit["case_no"] and row["call_id"] == qa_visit["call_id"]
    assert row["closed_at"] is not None and row["watched_s"] > 0
    assert "质检员 赵磊（qa1）" in qa_visit["access_table"]


def test_the_reviewer_returning_a_case_flags_it_for_qa(qa_visit: dict[str, Any]) -> None:
    assert qa_visit["reviewer_decide_hidden_before_claim"], "an unassigned case offered a decision"
    assert "退回补正" in qa_visit["reviewer_decided"]
    assert "已登记问题件" in qa_visit["reviewer_decided"]
    board = qa_visit["flag_board"]
    assert "材料问题" in board and "受理时未核对户口簿" in board
    assert "审批退回时登记" in board and qa_visit["case_no"] in board


def test_clerks_and_terminals_are_refused_every_qa_route(qa_visit: dict[str, Any]) -> None:
    for who in ("clerk_qa_routes", "terminal_qa_routes"):
        answers = qa_visit[who]
        assert len(answers) >= 15
        assert set(answers.values()) == {403}, (who, answers)
    assert qa_visit["clerk_qa_page"] == "此页面仅供质检人员和管理员使用"


def test_the_qa_page_loads_nothing_from_outside_and_raises_no_errors(
        qa_visit: dict[str, Any]) -> None:
    assert qa_visit["outside_requests"] == []
    assert qa_visit["page_errors"] == []

"""The identity check end to end in Debian's Chromium (issue 13): a real check in a whole
visit — card and face from two photos of the same person, the face following the random
challenge — the verdict on the console, 核验完成 on the kiosk, the case submitted with the
bound verification and shown to the reviewer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.run import run_scenario

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(360)]


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scenario("identity_scenario", tmp_path_factory.mktemp("e2e-identity"), 300,
                        needs_faces=True)


def test_the_kiosk_leads_the_applicant_through_card_and_moves(visit: dict[str, Any]) -> None:
    assert visit["kiosk_first_prompt"].startswith("第一步")
    seen = visit["kiosk_seen"]
    assert any(s.startswith("第二步") for s in seen), seen
    assert "核验完成" in seen, seen
    # The face followed every move the kiosk asked for (random order, each shown in words).
    assert set(visit["moves_played"]) <= {"left", "right", "nod", "blink"}
    assert len(set(visit["moves_played"])) >= 2, visit["moves_played"]
    assert not [s for s in seen if re.search(r"\d\.\d|距离|分数", s)], seen  # never a score


def test_the_clerk_sees_the_verdict_evidence_and_the_number_from_the_card(
        visit: dict[str, Any]) -> None:
    assert visit["verdict"] == "通过", visit["verdict_text"]
    assert "距离" in visit["verdict_text"]
    assert {"证件照片", "现场画面"} <= set(visit["clerk_evidence"])
    assert visit["case_id_filled"] == visit["card_number"]
    assert visit["card_number"] in visit["number_note"]
    assert not visit["override_open"]


def test_the_case_carries_the_check_to_the_reviewer(visit: dict[str, Any]) -> None:
    text = visit["reviewer_verification"]
    assert "通过" in text and "机器结论：通过" in text, text
    assert "人脸距离" in text
    assert {"证件照片", "现场画面"} <= set(visit["reviewer_pictures"])
    assert visit["page_errors"] == [] and visit["outside_requests"] == []

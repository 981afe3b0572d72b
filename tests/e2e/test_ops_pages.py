"""Operations pages end to end in Debian's Chromium, in a loopback-only namespace: the
supervisor page updates without reload when a terminal queues and a clerk goes ready;
a rating given at the kiosk reaches the figures and a 不满意 opens a follow-up task; an
admin creates a clerk who takes a call from a terminal enrolled with a one-time code."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.run import run_scenario

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ops_visit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scenario("ops_scenario", tmp_path_factory.mktemp("e2e-ops"), 240)


def test_the_supervisor_page_follows_the_queue_and_the_clerks(ops_visit: dict[str, Any]
                                                              ) -> None:
    assert ops_visit["not_reloaded"]
    assert "通话中" in ops_visit["clerk_row_in_call"]
    assert "童周岭村便民服务点" in ops_visit["calls_row"]  # the live call, by village
    assert int(ops_visit["answered_tile"]) >= 1
    assert ops_visit["charts"] == 2


def test_a_rating_at_the_kiosk_reaches_the_figures_and_opens_a_followup(
        ops_visit: dict[str, Any]) -> None:
    assert ops_visit["rating_question"] == "您对这次办事满意吗？"
    assert ops_visit["rating_faces"] == ["非常满意", "满意", "基本满意", "不满意"]
    assert int(ops_visit["followups_tile"]) >= 1
    assert ops_visit["satisfaction_tile"].startswith("0%")  # the one rating: 不满意


def test_an_admin_creates_a_clerk_and_enrols_a_terminal_that_meet_in_a_call(
        ops_visit: dict[str, Any]) -> None:
    assert "e2eclerk" in ops_visit["account_notice"]
    assert ops_visit["enrol_code_shown"]
    assert "新建村便民服务点" in ops_visit["enrolled_place"]
    assert ops_visit["camera_labels"] and ops_visit["face_camera_kept"] in ops_visit[
        "camera_labels"]  # chosen by label with a preview, kept in the kiosk's storage
    assert ops_visit["guide_qr_loaded"]  # 办事指南 QR on the materials screen
    assert "新建村便民服务点" in ops_visit["new_clerk_offer"]
    assert ops_visit["new_terminal_in_call"]


def test_the_console_buttons_say_what_they_do_and_show_todays_figures(
        ops_visit: dict[str, Any]) -> None:
    assert ops_visit["paused_buttons"][0] == "就绪" and "暂停" not in ops_visit["paused_buttons"]
    assert "暂停" in ops_visit["ready_buttons"] and "就绪" not in ops_visit["ready_buttons"]
    assert ops_visit["countdown_drawn"].isdigit()  # drawn with the offer
    assert "接听 1 次" in ops_visit["clerk_today"]


def test_nothing_is_loaded_from_outside_and_no_page_error(ops_visit: dict[str, Any]) -> None:
    assert ops_visit["outside_requests"] == []
    assert ops_visit["page_errors"] == []


def test_a_supervisor_watches_a_call_and_the_clerk_sees_it(ops_visit: dict[str, Any]) -> None:
    assert ops_visit["watch_face_frames"] >= 10 and ops_visit["watch_clerk_frames"] >= 10
    assert ops_visit["watching_notice"] == "有人监看：值班长 孙敏"
    assert ops_visit["call_goes_on_after_watch"]  # the watcher leaving did not end the call

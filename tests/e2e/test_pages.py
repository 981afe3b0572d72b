"""Kiosk and clerk console end to end in Debian's Chromium, in a loopback-only namespace.

The whole scenario runs in one `unshare -n` child (Redis, PostgreSQL, signaling, the media
worker and Chromium all inside it); this side checks what a person would have seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.run import run_scenario

# One scenario (about 40 s here) runs in the module fixture, inside the first test's time.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scenario("scenario", tmp_path_factory.mktemp("e2e"), 180, needs_faces=True)


def test_whole_visit_shows_video_both_ways_and_ends_on_the_slip(visit: dict[str, Any]) -> None:
    assert visit["kiosk_clerk_frames"] >= 10  # the kiosk sees the clerk's camera, live
    assert visit["clerk_face_frames"] >= 10  # the clerk sees the applicant's face camera
    assert visit["clerk_document_frames"] >= 10  # and the document camera
    assert visit["scans"] == 1
    assert visit["kiosk_outcome"] == "现场开单"
    assert "参保登记表" in visit["kiosk_missing"]
    assert visit["slip_case_no"] and visit["slip_case_no"] in visit["clerk_case_result"]
    assert visit["recording_files"], "the call's recording is on disk"
    assert visit["kiosk_screen_after_hangup"] == "done"  # the slip stays after the hang-up
    # Chromium and the worker agree on VP8: the browsers' own frames are passed through.
    assert visit["forwarding"]["passed"] > 0 and visit["forwarding"]["reencoded"] == 0


def test_offer_reject_and_timeout_set_the_clerk_not_ready(visit: dict[str, Any]) -> None:
    assert visit["reject_status"].startswith("未就绪")
    assert int(visit["countdown_shown"]) > 0
    assert "超时" in visit["timeout_notice"]
    assert visit["timeout_status"].startswith("未就绪")
    assert visit["kiosk_screen_after_timeout"] == "queue"  # the applicant keeps waiting


def test_reloads_keep_the_place_and_rejoin_the_call(visit: dict[str, Any]) -> None:
    assert visit["ticket_after_reload"] == visit["ticket_before_reload"]
    assert visit["position_after_reload"] == "0"
    assert visit["call_id_after_reload"] == visit["call_id"]
    assert visit["clerk_face_frames_after_reload"] >= 10
    assert visit["kiosk_clerk_frames_after_reload"] >= 10
    # The rejoined clerk's camera reaches the kiosk as passed-through frames again.
    assert visit["forwarding_after_reload"]["passed"] > visit["forwarding"]["passed"]
    assert visit["forwarding_after_reload"]["reencoded"] == 0


def test_a_second_clerk_joins_and_leaves_the_call(visit: dict[str, Any]) -> None:
    assert visit["second_sees_face_frames"] >= 10  # the invited clerk sees the applicant
    assert visit["second_sees_clerk_frames"] >= 10  # and the first clerk
    assert visit["kiosk_second_frames"] >= 10  # the applicant sees the second clerk
    assert visit["clerk_second_frames"] >= 10
    assert visit["call_after_second_left"] == visit["call_id"]  # the call goes on


def test_a_lost_network_is_recovered_by_itself(visit: dict[str, Any]) -> None:
    assert visit["ticket_after_network_loss"] == visit["ticket_before_reload"]
    assert visit["screen_after_network_loss"] == "queue"
    assert visit["screen_after_call_network_loss"] == "call"
    assert visit["kiosk_clerk_frames_after_network_loss"] >= 10
    assert visit["clerk_face_frames_after_network_loss"] >= 10


def test_kiosk_is_readable_and_returns_to_start_when_idle(visit: dict[str, Any]) -> None:
    assert visit["kiosk_body_px"] >= 24
    assert visit["kiosk_min_tile_px"] >= 64
    assert visit["kiosk_min_target_px"] >= 64
    assert visit["idle_returned_to"] == "start"
    assert "请打印证照" in visit["certificate_notice"]  # an approved case's certificate
    assert visit["login_error"] == "用户名或密码不正确"
    assert visit["bad_id_hint"] and visit["good_id_hint"] == "号码有效"


def test_certificates_need_the_slips_proof_and_a_new_kiosk_enrols_with_a_code(
        visit: dict[str, Any]) -> None:
    assert "不对" in visit["wrong_proof"]
    assert "还没有可以打印" in visit["right_proof"]  # the proof opened it; not approved yet
    assert "登记码不对" in visit["enrol_wrong"]
    assert visit["enrolled_place"] == "小朱湾村便民服务点"
    assert "token" not in visit["enrolled_url"]


def test_pages_load_nothing_from_outside_and_raise_no_errors(visit: dict[str, Any]) -> None:
    assert visit["requests"] > 0
    assert visit["outside_requests"] == []
    assert visit["page_errors"] == []
    assert visit["not_found"] == [], "a page asked for something that is not there"
    screens = Path(visit["out"]) / "screens"
    names = {p.name.split("-", 1)[1] for p in screens.glob("*.png")}
    assert {"kiosk-start.png", "kiosk-queue.png", "kiosk-call.png", "kiosk-done.png",
            "clerk-idle.png", "clerk-offer.png", "clerk-call.png", "clerk-case-form.png",
            "clerk-wrapup.png"} <= names

"""Face-to-ID match: what the clerk sees for the same person, another person, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.settings import Settings
from testkit.synth_id import EFFECTS, RGB, live_frame, photograph_card, render_card, two_faces_frame
from verify.cli import main
from verify.face_config import FaceMatchConfig
from verify.face_match import (
    REASON_FAIL,
    REASON_FEW_FRAMES,
    REASON_PASS,
    REASON_SEVERAL,
    assess_live_frame,
    decide,
    decide_encoded,
    match,
    match_frames,
)
from verify.face_quality import FrameMeasure, GatedFrame
from verify.portrait import NO_PORTRAIT, IdPortrait, extract_portrait


def live_set(head: RGB) -> list[RGB]:
    """Three face-camera frames with pose and light changes."""
    poses = [(0.0, 1.0), (0.15, 0.85), (-0.15, 1.15)]
    return [live_frame(head, yaw=y, light=light, seed=i) for i, (y, light) in enumerate(poses)]


def card_photo(head: RGB, level: str, seed: int = 1) -> RGB:
    return photograph_card(render_card(head), EFFECTS[level], seed=seed)


@pytest.mark.parametrize(
    ("card", "live"), [("obama.jpg", "obama2.jpg"), ("biden2.jpg", "biden.jpg")]
)
def test_same_person_from_other_photo_passes(
    face_heads: dict[str, RGB], card: str, live: str
) -> None:
    verdict = match(card_photo(face_heads[card], "mild"), live_set(face_heads[live]))
    assert verdict.decision == "pass", verdict.to_dict()
    assert verdict.reasons == [REASON_PASS]
    assert verdict.card_found
    assert len(verdict.frames_used) == 3
    assert verdict.distance is not None and verdict.distance < verdict.pass_below


@pytest.mark.parametrize(
    ("card", "live"), [("obama.jpg", "biden2.jpg"), ("biden.jpg", "obama3.jpg")]
)
def test_different_people_fail(face_heads: dict[str, RGB], card: str, live: str) -> None:
    verdict = match(card_photo(face_heads[card], "mild"), live_set(face_heads[live]))
    assert verdict.decision == "fail", verdict.to_dict()
    assert verdict.reasons[0] == REASON_FAIL


def test_tiny_heavily_compressed_card_never_fails_the_right_person_nor_passes_another(
    face_heads: dict[str, RGB],
) -> None:
    live = {name: live_set(face_heads[name])[:2] for name in ("obama2.jpg", "biden.jpg")}
    for card in ("obama3.jpg", "biden2.jpg"):
        photo = card_photo(face_heads[card], "strong", seed=5)
        for name, frames in live.items():
            verdict = match(photo, frames)
            same = name[:5] == card[:5]
            assert verdict.portrait_face_px < 75, "the strong level must be ID-photo sized"
            if same:
                assert verdict.decision in {"pass", "review"}, verdict.to_dict()
            else:
                assert verdict.decision in {"fail", "review"}, verdict.to_dict()


def test_already_cropped_portrait_is_accepted(face_heads: dict[str, RGB]) -> None:
    verdict = match(face_heads["obama3.jpg"], live_set(face_heads["obama.jpg"]))
    assert verdict.decision == "pass", verdict.to_dict()


def test_no_card_asks_for_the_card(face_heads: dict[str, RGB]) -> None:
    desk = np.full((720, 1280, 3), 90, np.uint8)
    verdict = match(desk, live_set(face_heads["obama.jpg"])[:1])
    assert verdict.decision == "review"
    assert verdict.reasons == [NO_PORTRAIT]


def test_card_without_portrait_asks_for_the_card() -> None:
    empty_card = photograph_card(render_card(None), EFFECTS["mild"])
    verdict = match(empty_card, [np.full((480, 640, 3), 128, np.uint8)])
    assert verdict.decision == "review"
    assert verdict.reasons == [NO_PORTRAIT]


def test_no_face_in_live_frames_is_review_with_reason(face_heads: dict[str, RGB]) -> None:
    wall = [np.full((480, 640, 3), 180, np.uint8) for _ in range(3)]
    verdict = match(card_photo(face_heads["obama.jpg"], "mild"), wall)
    assert verdict.decision == "review"
    assert verdict.reasons == [REASON_FEW_FRAMES, "未检测到人脸"]
    assert verdict.skipped == {"no_face": 3}
    assert verdict.frames_used == []


def test_two_faces_is_review_even_when_the_applicant_matches(face_heads: dict[str, RGB]) -> None:
    frames = live_set(face_heads["obama2.jpg"])
    frames.append(two_faces_frame(face_heads["obama2.jpg"], face_heads["biden.jpg"]))
    verdict = match(card_photo(face_heads["obama.jpg"], "mild"), frames)
    assert verdict.decision == "review", verdict.to_dict()
    assert REASON_SEVERAL in verdict.reasons
    assert verdict.skipped == {"several_faces": 1}


def _ok_frame(sharpness: float) -> GatedFrame:
    return GatedFrame("ok", measure=FrameMeasure(200, sharpness, 120, 0, 0, 0.7, 0), faces=1)


def test_one_lucky_frame_does_not_pass() -> None:
    config = FaceMatchConfig()
    portrait = IdPortrait(np.zeros(128), 90, True, None)
    frames = [_ok_frame(100) for _ in range(3)]
    distances = {
        0: config.pass_below - 0.2,
        1: config.fail_above + 0.05,
        2: config.fail_above + 0.1,
    }
    verdict = decide(portrait, frames, distances, config)
    assert verdict.decision == "fail"
    assert verdict.distance == pytest.approx(config.fail_above + 0.05)


def test_tiny_portrait_raises_the_fail_threshold() -> None:
    config = FaceMatchConfig()
    frames = [_ok_frame(100) for _ in range(3)]
    between = (config.fail_above + config.small_portrait_fail_above) / 2
    distances = dict.fromkeys(range(3), between)
    big = decide(IdPortrait(np.zeros(128), 90, True, None), frames, distances, config)
    tiny = decide(IdPortrait(np.zeros(128), 45, True, None), frames, distances, config)
    assert big.decision == "fail"
    assert tiny.decision == "review"


def test_thresholds_come_from_settings() -> None:
    settings = Settings.from_env({"FACE_PASS_BELOW": "0.5", "FACE_FAIL_ABOVE": "0.7"})
    assert settings.face_match.pass_below == 0.5
    assert settings.face_match.fail_above == 0.7
    with pytest.raises(ValueError):
        Settings.from_env({"FACE_PASS_BELOW": "0.8", "FACE_FAIL_ABOVE": "0.7"})


def test_frames_encoded_one_by_one_give_the_same_verdict(face_heads: dict[str, RGB]) -> None:
    card = card_photo(face_heads["biden.jpg"], "medium")
    live = live_set(face_heads["biden2.jpg"])
    portrait = extract_portrait(card)
    at_once = match_frames(portrait, live)
    one_by_one = decide_encoded(portrait, [assess_live_frame(image) for image in live])
    assert one_by_one.decision == at_once.decision == "pass"
    assert one_by_one.distance == pytest.approx(at_once.distance)


def test_cli_prints_one_json_verdict(
    face_heads: dict[str, RGB], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "card.jpg"
    Image.fromarray(card_photo(face_heads["obama.jpg"], "mild")).save(card, quality=90)
    live = []
    for i, frame in enumerate(live_set(face_heads["obama3.jpg"])):
        live.append(tmp_path / f"live{i}.png")
        Image.fromarray(frame).save(live[-1])
    assert main(["face-match", "--id", str(card), "--live", *map(str, live)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] == "pass"
    assert result["frames_used"] == [0, 1, 2]
    assert result["reasons"] == [REASON_PASS]
    assert main(["face-match", "--id", str(tmp_path / "missing.jpg"), "--live", str(live[0])]) == 1
    assert "cannot read image" in json.loads(capsys.readouterr().out)["error"]

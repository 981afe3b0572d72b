"""Liveness: a challenge followed passes; a still picture, a wrong move or a timeout fails."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from testkit.synth_id import RGB, close_eyes, live_frame
from verify.cli import main
from verify.face_config import LivenessConfig
from verify.liveness import (
    REASON_FROZEN,
    REASON_PASS,
    REASON_STATIC,
    REASON_TIMEOUT,
    Challenge,
    LivenessFrame,
    LivenessSession,
    LivenessVerdict,
    new_challenge,
    observe,
    parse_challenge,
)

FPS = 10.0
Pose = tuple[float, float, bool]  # yaw, pitch in radians; the eyes shut


def move(yaw: float = 0.0, pitch: float = 0.0) -> list[Pose]:
    """Out to the pose and back, the way a person turns or nods."""
    out = [(yaw * k / 3, pitch * k / 3, False) for k in (1, 2, 3, 3, 2, 1)]
    return [*out, (0.0, 0.0, False), (0.0, 0.0, False)]


STILL: list[Pose] = [(0.0, 0.0, False)] * 4
LEFT, RIGHT, NOD = move(yaw=0.5), move(yaw=-0.5), move(pitch=0.4)
# Eyes shut for two samples (200 ms at 10 a second), then open again.
BLINK: list[Pose] = [(0.0, 0.0, False), (0.0, 0.0, True), (0.0, 0.0, True),
                     (0.0, 0.0, False), (0.0, 0.0, False)]
_shut: dict[int, RGB] = {}


def frames_of(head: RGB, poses: Sequence[Pose]) -> list[RGB]:
    def shut() -> RGB:
        return _shut.setdefault(id(head), close_eyes(head))

    return [
        live_frame(shut() if closed else head, yaw=y, pitch=p,
                   shift=(0.01 * math.sin(i), 0.005 * i % 0.02), seed=i)
        for i, (y, p, closed) in enumerate(poses)
    ]


def run(images: Sequence[RGB], challenge: Sequence[Challenge], fps: float = FPS) -> LivenessVerdict:
    session = LivenessSession(list(challenge))
    for i, image in enumerate(images):
        verdict = session.feed(observe(image, i / fps))
        if verdict.status != "pending":
            return verdict
    return session.finish()


@pytest.mark.parametrize(
    ("name", "challenge", "poses"),
    [
        ("obama.jpg", ["left", "right"], STILL + LEFT + RIGHT),
        ("biden2.jpg", ["nod", "left"], STILL + NOD + LEFT),
        ("obama2.jpg", ["right", "nod"], STILL + RIGHT + NOD),
        ("obama.jpg", ["blink", "left"], STILL + BLINK + LEFT),
        ("biden2.jpg", ["right", "blink"], STILL + RIGHT + BLINK),
    ],
)
def test_following_the_challenge_passes(
    face_heads: dict[str, RGB], name: str, challenge: list[Challenge], poses: list[Pose]
) -> None:
    verdict = run(frames_of(face_heads[name], poses), challenge)
    assert verdict.status == "pass", verdict
    assert verdict.reason == REASON_PASS
    assert verdict.completed == challenge
    assert verdict.elapsed_s < 3.0


def test_the_last_move_ends_the_challenge_without_waiting_for_the_head_to_come_back(
    face_heads: dict[str, RGB]
) -> None:
    # A slow sampler may see the last turn and nothing after it before the time runs out.
    turned_away = [(0.0, 0.0, False)] * 2 + [(-0.5, 0.0, False)] * 3
    poses = STILL + LEFT + turned_away
    verdict = run(frames_of(face_heads["obama.jpg"], poses), ["left", "right"])
    assert verdict.status == "pass", verdict
    assert verdict.completed == ["left", "right"]


def test_the_video_shrinking_mid_challenge_does_not_stop_the_check(
        face_heads: dict[str, RGB]) -> None:
    # WebRTC lowers the resolution when the bandwidth drops: 640x480 became 480x360 in a
    # browser run, and the head "never came back" because its eye distance had shrunk.
    images = frames_of(face_heads["obama.jpg"], STILL + LEFT + RIGHT)
    cut = len(STILL) + len(LEFT) - 2
    images = images[:cut] + [np.asarray(cv2.resize(im, (480, 360), interpolation=cv2.INTER_AREA))
                             for im in images[cut:]]
    verdict = run(images, ["left", "right"])
    assert verdict.status == "pass", verdict
    assert verdict.completed == ["left", "right"]


def test_wrong_order_fails_naming_the_expected_move(face_heads: dict[str, RGB]) -> None:
    verdict = run(frames_of(face_heads["obama.jpg"], STILL + LEFT + RIGHT), ["right", "left"])
    assert verdict.status == "fail"
    assert verdict.reason == "动作与提示不符：应为向右转头"


def test_a_blink_while_a_turn_is_asked_is_not_a_wrong_move(face_heads: dict[str, RGB]) -> None:
    # Everyone blinks now and then; only a turn the other way is the wrong move.
    verdict = run(frames_of(face_heads["obama.jpg"], STILL + BLINK + LEFT + BLINK + RIGHT),
                  ["left", "right"])
    assert verdict.status == "pass", verdict


def test_open_eyes_do_not_pass_a_blink(face_heads: dict[str, RGB]) -> None:
    verdict = run(frames_of(face_heads["obama.jpg"], STILL * 6), ["blink", "left"], fps=2.0)
    assert verdict.status == "fail"
    assert verdict.completed == []


def test_eyes_that_cannot_show_a_blink_are_asked_for_a_head_move(
        face_heads: dict[str, RGB]) -> None:
    # Heavy lids or glare on glasses: no white to measure, so a blink could only time out.
    session = LivenessSession(["blink", "left"])
    images = frames_of(face_heads["obama.jpg"], STILL + RIGHT + LEFT)
    prompts, verdict = [], None
    for i, image in enumerate(images):
        verdict = session.feed(replace(observe(image, i / FPS), eyes=0.1))
        prompts.append(verdict.prompt)
        if verdict.status != "pending":
            break
    assert verdict is not None and verdict.status == "pass", verdict
    assert verdict.completed == ["right", "left"]
    assert session.moves == ["right", "left"] and session.blink_replaced
    assert "眨眼" not in prompts and "向右转头" in prompts


def test_eyes_that_can_blink_keep_the_blink(face_heads: dict[str, RGB]) -> None:
    session = LivenessSession(["blink", "left"])
    for i, image in enumerate(frames_of(face_heads["obama.jpg"], STILL + STILL)):
        session.feed(observe(image, i / FPS))
    assert session.moves == ["blink", "left"] and not session.blink_replaced


def test_a_picture_swept_sideways_is_not_a_blink(face_heads: dict[str, RGB]) -> None:
    # Motion blur along the eye axis hides the iris's edges as a shut lid does; the face moved.
    head = face_heads["obama.jpg"]
    images = [live_frame(head, shift=(0.0, 0.0), seed=i) for i in range(4)]
    for i in range(8):
        frame = live_frame(head, shift=(0.12 * (-1) ** i, 0.0), seed=10 + i)
        images.append(np.asarray(cv2.blur(frame, (25, 1)), np.uint8))
    verdict = run(images, ["blink", "left"], fps=4.0)
    assert verdict.completed == [], verdict


def test_too_slow_fails_with_timeout(face_heads: dict[str, RGB]) -> None:
    frames = frames_of(face_heads["obama.jpg"], STILL + LEFT + [(0.0, 0.0, False)] * 3 + RIGHT)
    # The same moves, but one frame every second: the 12 s limit runs out before the end.
    verdict = run(frames, ["left", "right"], fps=1.0)
    assert verdict.status == "fail"
    assert verdict.reason == REASON_TIMEOUT
    assert verdict.completed == ["left"]


def test_still_photo_with_small_shifts_and_noise_is_rejected(face_heads: dict[str, RGB]) -> None:
    head = face_heads["biden.jpg"]
    rng = np.random.default_rng(7)
    # Two frames a second for 12.5 s: past the time limit.
    images = [
        live_frame(head, shift=tuple(rng.uniform(-0.02, 0.02, 2)), noise=3.0, seed=i)
        for i in range(26)
    ]
    verdict = run(images, ["left", "right"], fps=2.0)
    assert verdict.status == "fail"
    assert verdict.reason == REASON_STATIC


def test_frozen_stream_is_rejected_early(face_heads: dict[str, RGB]) -> None:
    frame = live_frame(face_heads["obama.jpg"])
    verdict = run([frame] * 8, ["left", "right"])
    assert verdict.status == "fail"
    assert verdict.reason == REASON_FROZEN
    assert verdict.elapsed_s < 1.0


def tilt_picture(image: RGB, angle: float) -> RGB:
    """A flat picture turned about its vertical axis, seen by a camera 3 widths away."""
    h, w = image.shape[:2]
    f = 3.0 * w
    corners = []
    for x, y in ((0, 0), (w, 0), (w, h), (0, h)):
        dx = x - w / 2
        z = f + dx * math.sin(angle)
        corners.append((w / 2 + dx * math.cos(angle) * f / z, h / 2 + (y - h / 2) * f / z))
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float32)
    matrix = cv2.getPerspectiveTransform(src, np.array(corners, np.float32))
    warped = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, np.uint8)


@pytest.mark.parametrize("challenge", [["left", "right"], ["nod", "left"], ["blink", "right"]])
def test_printed_photo_turned_in_front_of_the_camera_does_not_pass(
    face_heads: dict[str, RGB], challenge: list[Challenge]
) -> None:
    photo = live_frame(face_heads["obama.jpg"], noise=0.0)
    angles = [0.0] * 4 + [0.25, 0.5, 0.7, 0.5, 0.25, 0.0, 0.0, -0.25, -0.5, -0.7, -0.5, -0.25]
    rng = np.random.default_rng(3)
    images = [
        np.clip(tilt_picture(photo, a) + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
        for a in angles * 2
    ]
    verdict = run(images, challenge, fps=2.5)
    assert verdict.status == "fail", verdict


def test_faces_lost_or_doubled_do_not_count_as_moves() -> None:
    session = LivenessSession(["left"], LivenessConfig(timeout_s=2.0))
    blank = LivenessFrame(0.0, 0, None, None, np.zeros((24, 32), np.float32))
    verdicts = [
        session.feed(LivenessFrame(t / 10, t % 3, None, None, blank.digest + t)) for t in range(25)
    ]
    assert verdicts[0].prompt == "请正对摄像头"
    assert verdicts[-1].status == "fail"
    assert verdicts[-1].reason == REASON_TIMEOUT


def test_random_challenges_have_distinct_moves() -> None:
    rng = random.Random(1)
    seen = {tuple(new_challenge(rng)) for _ in range(50)}
    assert all(len(set(c)) == 2 for c in seen)
    assert len(seen) == 12  # every ordered pair of the four moves shows up


def test_challenge_text_is_checked() -> None:
    assert parse_challenge("Left, nod") == ["left", "nod"]
    assert parse_challenge("blink,right") == ["blink", "right"]
    with pytest.raises(ValueError):
        parse_challenge("left,jump")


def write_video(path: Path, images: Sequence[RGB], fps: float) -> None:
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    for image in images:
        writer.write(np.ascontiguousarray(image[..., ::-1]))
    writer.release()


def test_cli_judges_a_video(
    face_heads: dict[str, RGB], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "applicant.avi"
    write_video(video, frames_of(face_heads["obama.jpg"], STILL + LEFT + RIGHT), FPS)
    assert main(["liveness", "--video", str(video), "--challenge", "left,right"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "pass"
    assert result["completed"] == ["left", "right"]
    assert main(["liveness", "--video", str(video), "--challenge", "right,left"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "fail"


def test_cli_reports_an_unreadable_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["liveness", "--video", str(tmp_path / "none.mp4"), "--challenge", "left"]) == 1
    assert "cannot read video" in json.loads(capsys.readouterr().out)["error"]

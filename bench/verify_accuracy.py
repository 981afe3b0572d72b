"""Accuracy of face-to-ID verification and liveness with the configured thresholds.

Face match: every genuine and impostor pair buildable from ../shared/testdata/faces (cards
photographed at three effect levels, several seeds each; see bench/calibrate_face.py),
decided with the defaults in verify/face_config.py: false accept rate, false reject rate and
review rate per effect level.

Liveness: synthetic face-camera sequences per photo: the challenge followed (must pass), a
still photo with small shifts and noise, a printed photo turned in front of the camera, and
the wrong order (all must fail).

    .venv/bin/python bench/verify_accuracy.py [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import calibrate_face
from testkit.synth_id import RGB, close_eyes, live_frame, load_head
from verify.face_config import FaceMatchConfig
from verify.liveness import Challenge, LivenessSession, observe

Pose = tuple[float, float, bool]  # yaw, pitch, eyes shut


def move(yaw: float = 0.0, pitch: float = 0.0) -> list[Pose]:
    out = [(yaw * k / 3, pitch * k / 3, False) for k in (1, 2, 3, 3, 2, 1)]
    return [*out, (0.0, 0.0, False), (0.0, 0.0, False)]


STILL: list[Pose] = [(0.0, 0.0, False)] * 4
MOVES: dict[Challenge, list[Pose]] = {
    "left": move(yaw=0.5),
    "right": move(yaw=-0.5),
    "nod": move(pitch=0.4),
    # the eyes shut for two samples (200 ms at 10 a second)
    "blink": [(0.0, 0.0, False), (0.0, 0.0, True), (0.0, 0.0, True), (0.0, 0.0, False)],
}


def judge(images: Sequence[RGB], challenge: list[Challenge], fps: float) -> str:
    session = LivenessSession(challenge)
    for i, image in enumerate(images):
        verdict = session.feed(observe(image, i / fps))
        if verdict.status != "pending":
            return verdict.status
    return session.finish().status


def tilt_picture(image: RGB, angle: float) -> RGB:
    h, w = image.shape[:2]
    f = 3.0 * w
    corners = []
    for x, y in ((0, 0), (w, 0), (w, h), (0, h)):
        dx = x - w / 2
        z = f + dx * math.sin(angle)
        corners.append((w / 2 + dx * math.cos(angle) * f / z, h / 2 + (y - h / 2) * f / z))
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float32)
    matrix = cv2.getPerspectiveTransform(src, np.array(corners, np.float32))
    return np.asarray(cv2.warpPerspective(image, matrix, (w, h)), np.uint8)


def liveness_table() -> dict[str, dict[str, int]]:
    challenges: list[list[Challenge]] = [["left", "right"], ["nod", "left"], ["right", "nod"],
                                         ["blink", "left"], ["nod", "blink"]]
    table = {k: {"runs": 0, "passed": 0} for k in ("follows", "wrong_order", "still", "tilted")}
    rng = np.random.default_rng(11)
    for name in calibrate_face.PHOTOS:
        head = load_head(calibrate_face.FACES / name)
        shut = close_eyes(head)
        for challenge in challenges:
            poses = STILL + MOVES[challenge[0]] + MOVES[challenge[1]]
            images = [
                live_frame(shut if closed else head, yaw=y, pitch=p,
                           shift=(0.01 * math.sin(i), 0.0), seed=i)
                for i, (y, p, closed) in enumerate(poses)
            ]
            _count(table["follows"], judge(images, challenge, 10.0))
            _count(table["wrong_order"], judge(images, challenge[::-1], 10.0))
        still = [
            live_frame(head, shift=(rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)), seed=i)
            for i in range(26)
        ]
        _count(table["still"], judge(still, ["left", "right"], 2.0))
        _count(table["still"], judge(still, ["blink", "nod"], 2.0))
        photo = live_frame(head, noise=0.0)
        angles = [0.0] * 4 + [0.25, 0.5, 0.7, 0.5, 0.25, 0.0, 0.0, -0.25, -0.5, -0.7, -0.5, -0.25]
        tilted = [tilt_picture(photo, a) for a in angles * 2]
        for challenge in challenges:
            _count(table["tilted"], judge(tilted, challenge, 2.5))
    return table


def _count(row: dict[str, int], status: str) -> None:
    row["runs"] += 1
    row["passed"] += status == "pass"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="card photographs per photo and level")
    args = parser.parse_args()
    if not calibrate_face.FACES.is_dir():
        print(json.dumps({"skipped": f"no test faces at {calibrate_face.FACES}"}))
        return
    config = FaceMatchConfig()
    pairs = calibrate_face.collect(args.seeds, config)
    print(
        f"thresholds: pass_below={config.pass_below} fail_above={config.fail_above} "
        f"small_portrait_fail_above={config.small_portrait_fail_above} "
        f"(portraits < {config.small_portrait_px} px)"
    )
    print("distances (median over the best live frames):")
    calibrate_face.distance_summary(pairs, config)
    table = calibrate_face.rates(pairs, config)
    calibrate_face.print_table(table)
    live = liveness_table()
    print(
        "liveness (runs / passed): "
        + ", ".join(f"{k} {v['runs']}/{v['passed']}" for k, v in live.items())
    )
    print(json.dumps({"face_match": table, "liveness": live, "seeds": args.seeds}))


if __name__ == "__main__":
    main()

"""Live-frame gates: bad frames are skipped with the reason a clerk would give."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit.synth_id import RGB, live_frame
from verify.face_config import FaceMatchConfig
from verify.face_quality import GATE_REASONS, FrameMeasure, first_failed_gate, gate_frame


def test_good_frame_passes_every_gate(face_heads: dict[str, RGB]) -> None:
    gated = gate_frame(live_frame(face_heads["obama.jpg"]))
    assert gated.ok
    assert gated.faces == 1
    assert gated.measure is not None and gated.measure.face_px >= 90


def test_blurred_frame_is_skipped_as_blurry(face_heads: dict[str, RGB]) -> None:
    frame = np.asarray(cv2.GaussianBlur(live_frame(face_heads["obama.jpg"]), (0, 0), 4.0), np.uint8)
    assert gate_frame(frame).gate == "blurry"


def test_dark_frame_is_skipped_as_too_dark(face_heads: dict[str, RGB]) -> None:
    frame = live_frame(face_heads["biden2.jpg"], light=0.3, noise=1.0)
    assert gate_frame(frame).gate == "too_dark"


def test_far_away_face_is_too_small(face_heads: dict[str, RGB]) -> None:
    frame = live_frame(face_heads["obama.jpg"], face_width_frac=0.22)
    gated = gate_frame(frame)
    assert gated.gate in {"too_small", "no_face"}


def test_large_frame_is_detected_on_a_shrunk_copy(face_heads: dict[str, RGB]) -> None:
    gated = gate_frame(live_frame(face_heads["obama.jpg"], size=(1280, 720)))
    assert gated.ok
    assert gated.measure is not None and gated.measure.face_px > 250  # full-size coordinates


@pytest.mark.parametrize(
    ("change", "gate"),
    [
        ({"face_px": 40}, "too_small"),
        ({"sharpness": 3.0}, "blurry"),
        ({"brightness": 20.0}, "too_dark"),
        ({"brightness": 240.0}, "too_bright"),
        ({"clipped": 0.5}, "too_bright"),
        ({"yaw_ratio": 0.4}, "not_frontal"),
        ({"roll_deg": -35.0}, "not_frontal"),
    ],
)
def test_each_gate_names_its_reason(change: dict[str, float], gate: str) -> None:
    good = {"face_px": 200, "sharpness": 80.0, "brightness": 120.0, "clipped": 0.0}
    good |= {"yaw_ratio": 0.0, "pitch_ratio": 0.7, "roll_deg": 0.0}
    measure = FrameMeasure(**(good | change))  # type: ignore[arg-type]
    assert first_failed_gate(measure, FaceMatchConfig()) == gate
    assert GATE_REASONS[gate]

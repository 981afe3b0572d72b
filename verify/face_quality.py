"""Live-frame gates: one face, big enough, sharp, well exposed, frontal.

A frame that fails a gate is skipped and counted under its reason, never matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from verify import face_model
from verify.face_config import FaceMatchConfig
from verify.face_model import RGB, FaceBox, FivePoints
from verify.sharpness import laplacian_variance

# Gate codes and what the clerk reads for them.
GATE_REASONS: dict[str, str] = {
    "no_face": "未检测到人脸",
    "several_faces": "画面中有多张人脸",
    "too_small": "人脸太小，请靠近摄像头",
    "blurry": "画面模糊",
    "too_dark": "光线太暗",
    "too_bright": "光线太亮或反光",
    "not_frontal": "请正对摄像头",
}


@dataclass(frozen=True)
class FrameMeasure:
    """What the gates measured on one frame's face."""

    face_px: int
    sharpness: float
    brightness: float
    clipped: float
    yaw_ratio: float
    pitch_ratio: float
    roll_deg: float


@dataclass(frozen=True)
class GatedFrame:
    """One live frame after the gates: `gate` is "ok" or the code of the first failed gate."""

    gate: str
    box: FaceBox | None = None
    points: FivePoints | None = None
    shape: Any = None  # the dlib shape, kept for the encoder
    measure: FrameMeasure | None = None
    faces: int = 0

    @property
    def ok(self) -> bool:
        return self.gate == "ok"

    @property
    def score(self) -> float:
        """Higher is a better frame to match: sharp, frontal, large."""
        if self.measure is None:
            return 0.0
        m = self.measure
        return min(m.sharpness, 200.0) / 200.0 + min(m.face_px, 300) / 300 - 2 * abs(m.yaw_ratio)


def measure(image: RGB, box: FaceBox, points: FivePoints) -> FrameMeasure:
    h, w = image.shape[:2]
    x0, y0 = max(box.left, 0), max(box.top, 0)
    x1, y1 = min(box.right, w), min(box.bottom, h)
    gray = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    # Sharpness on a fixed-size crop so it does not depend on the face's size.
    norm = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA)
    sharpness = laplacian_variance(norm)
    clipped = float(np.mean((gray <= 2) | (gray >= 253)))
    yaw, pitch, roll = points.pose()
    return FrameMeasure(box.width, sharpness, float(gray.mean()), clipped, yaw, pitch, roll)


def first_failed_gate(m: FrameMeasure, config: FaceMatchConfig) -> str:
    if m.face_px < config.min_face_px:
        return "too_small"
    if m.sharpness < config.min_sharpness:
        return "blurry"
    if m.brightness < config.min_brightness:
        return "too_dark"
    if m.brightness > config.max_brightness or m.clipped > config.max_clipped:
        return "too_bright"
    if abs(m.yaw_ratio) > config.max_yaw_ratio or abs(m.roll_deg) > config.max_roll_deg:
        return "not_frontal"
    return "ok"


def gate_frame(image: RGB, config: FaceMatchConfig | None = None) -> GatedFrame:
    """Detect, landmark and gate one live frame."""
    config = config or FaceMatchConfig()
    boxes = face_model.detect(image, 0, config.detect_width)
    if not boxes:
        return GatedFrame("no_face")
    if len(boxes) > 1:
        return GatedFrame("several_faces", faces=len(boxes))
    box = boxes[0]
    shape, points = face_model.landmarks(image, box)
    m = measure(image, box, points)
    return GatedFrame(first_failed_gate(m, config), box, points, shape, m, faces=1)

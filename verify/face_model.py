"""The dlib models behind face_recognition: HOG detector, 5-point landmarks, ResNet encoder.

Loaded lazily once per process (a worker's process pool pays it once). Only the 5-point
landmark model is used: the 68-point model's licence does not allow commercial use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]
Encoding = npt.NDArray[np.float64]
Point = tuple[float, float]


@dataclass(frozen=True)
class FaceBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def scaled(self, factor: float, dx: float = 0.0, dy: float = 0.0) -> FaceBox:
        return FaceBox(
            round(self.left * factor + dx),
            round(self.top * factor + dy),
            round(self.right * factor + dx),
            round(self.bottom * factor + dy),
        )


@dataclass(frozen=True)
class FivePoints:
    """The 5 landmarks: two corners per eye and the base of the nose, in image coordinates."""

    eye_a: tuple[Point, Point]  # the eye on the image's left
    eye_b: tuple[Point, Point]  # the eye on the image's right
    nose: Point

    @property
    def _centres(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return np.mean(self.eye_a, axis=0), np.mean(self.eye_b, axis=0)

    def scaled(self, factor: float) -> FivePoints:
        def s(p: Point) -> Point:
            return (p[0] * factor, p[1] * factor)

        return FivePoints((s(self.eye_a[0]), s(self.eye_a[1])),
                          (s(self.eye_b[0]), s(self.eye_b[1])), s(self.nose))

    @property
    def eye_distance(self) -> float:
        a, b = self._centres
        return float(np.linalg.norm(b - a))

    def pose(self) -> tuple[float, float, float]:
        """(yaw_ratio, pitch_ratio, roll_deg) of the nose in the frame of the eye axis.

        yaw_ratio > 0 when the nose moves to the image's right (the subject's own left in
        an unmirrored camera); pitch_ratio grows when the head nods down.
        """
        a, b = self._centres
        axis = b - a
        d = float(np.linalg.norm(axis)) or 1.0
        u = axis / d
        v = np.array([-u[1], u[0]])
        rel = np.asarray(self.nose) - (a + b) / 2
        roll = math.degrees(math.atan2(axis[1], axis[0]))
        return float(rel @ u) / d, float(rel @ v) / d, roll


@lru_cache(maxsize=1)
def _models() -> tuple[Any, Any, Any]:
    import dlib
    import face_recognition_models as frm  # type: ignore[import-untyped]

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


def warm_up() -> None:
    """Load the models and run the detector once, so the first real check is not slower."""
    detector, _, _ = _models()
    detector(np.zeros((120, 160, 3), np.uint8), 0)


def detect(image: RGB, upsample: int = 0, max_width: int | None = None) -> list[FaceBox]:
    """HOG face boxes in full-image coordinates; detection may run on a shrunk copy."""
    detector, _, _ = _models()
    scale = 1.0
    work = image
    if max_width is not None and image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        work = np.asarray(
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
        )
    rects = detector(np.ascontiguousarray(work), upsample)
    boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return [b.scaled(1 / scale) for b in boxes]


def landmarks(image: RGB, box: FaceBox) -> tuple[Any, FivePoints]:
    """The dlib shape (for the encoder) and the 5 points."""
    import dlib

    _, predictor, _ = _models()
    shape = predictor(image, dlib.rectangle(box.left, box.top, box.right, box.bottom))
    p = [(float(shape.part(i).x), float(shape.part(i).y)) for i in range(5)]
    eye1, eye2 = (p[0], p[1]), (p[2], p[3])
    if np.mean([q[0] for q in eye1]) > np.mean([q[0] for q in eye2]):
        eye1, eye2 = eye2, eye1
    return shape, FivePoints(eye1, eye2, p[4])


def encode(image: RGB, shape: Any, jitters: int = 1) -> Encoding:
    _, _, encoder = _models()
    return np.asarray(encoder.compute_face_descriptor(image, shape, jitters), dtype=np.float64)


def distance(a: Encoding, b: Encoding) -> float:
    return float(np.linalg.norm(a - b))

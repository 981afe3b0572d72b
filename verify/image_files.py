"""Reading the CLI's input files: images, videos and the thresholds file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from verify.face_model import RGB


class InputError(Exception):
    """An input file is missing or not an image / video."""


def read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"cannot read thresholds file {path}")
    return path.read_text(encoding="utf-8")


def read_image(path: Path) -> RGB:
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    bgr = None if data is None or data.size == 0 else cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return np.ascontiguousarray(np.asarray(bgr, np.uint8)[..., ::-1])


def video_frames(path: Path, max_fps: float) -> Iterator[tuple[float, RGB]]:
    """(seconds, RGB frame) from a video file, at most max_fps of them per second."""
    if not path.is_file():
        raise InputError(f"cannot read video {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot read video {path}")
    last = -1e9
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            t = float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            if t - last < 1.0 / max_fps - 1e-6:
                continue
            last = t
            yield t, np.ascontiguousarray(np.asarray(bgr, np.uint8)[..., ::-1])
    finally:
        capture.release()


def read_bgr(path: Path) -> NDArray[np.uint8]:
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    image = None if data is None or data.size == 0 else cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return np.asarray(image, np.uint8)

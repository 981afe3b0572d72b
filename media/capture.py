"""Scan capture: keep the last ~2 s of document-camera frames and pick the sharpest.

Sharpness is `verify.sharpness` (the variance of the Laplacian of the grey image).
Frames are kept as decoded `av.VideoFrame`s (no conversion on the hot path); the choice
and the PNG encoding run in a thread when the clerk asks.
"""

from __future__ import annotations

import hashlib
import io
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from av import VideoFrame
from PIL import Image

from media.frames import pixels
from verify.sharpness import laplacian_variance

THUMB_WIDTH = 240


class CaptureBuffer:
    """The last `window_s` of frames, at most one per `min_interval_s` (bounded memory)."""

    def __init__(self, window_s: float = 2.0, min_interval_s: float = 0.06) -> None:
        self.window_s = window_s
        self.min_interval_s = min_interval_s
        self._frames: deque[tuple[float, VideoFrame]] = deque()

    def push(self, now: float, frame: VideoFrame) -> None:
        if self._frames and now - self._frames[-1][0] < self.min_interval_s:
            return
        self._frames.append((now, frame))
        while self._frames and now - self._frames[0][0] > self.window_s:
            self._frames.popleft()

    def snapshot(self) -> list[VideoFrame]:
        return [f for _, f in self._frames]

    def latest(self) -> tuple[float, VideoFrame] | None:
        """The newest frame with the time it reached the worker."""
        return self._frames[-1] if self._frames else None


@dataclass(frozen=True)
class Still:
    png: bytes
    thumb_jpeg: bytes
    sha256: str
    width: int
    height: int
    sharpness: float


def pick_sharpest(frames: list[VideoFrame]) -> Still | None:
    """Runs in a thread: score every frame, encode the best at full resolution."""
    best: tuple[float, npt.NDArray[np.uint8]] | None = None
    for frame in frames:
        gray = pixels(frame, "gray")
        score = laplacian_variance(gray)
        if best is None or score > best[0]:
            best = (score, pixels(frame, "rgb24"))
    if best is None:
        return None
    score, rgb = best
    image = Image.fromarray(rgb)
    out = io.BytesIO()
    image.save(out, format="PNG")
    png = out.getvalue()
    thumb = image.copy()
    thumb.thumbnail((THUMB_WIDTH, THUMB_WIDTH * rgb.shape[0] // rgb.shape[1]))
    tout = io.BytesIO()
    thumb.save(tout, format="JPEG", quality=85)
    return Still(
        png=png,
        thumb_jpeg=tout.getvalue(),
        sha256=hashlib.sha256(png).hexdigest(),
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        sharpness=score,
    )

"""The recording's picture: face large, document and clerk small, watermark burned in.

Pure functions over numpy images. The picture is put together in I420 (planar YUV 4:2:0,
what the decoder gives and the H.264 encoder takes), so no frame goes through RGB; the
watermark is rendered with Pillow and a CJK font so Chinese names show, then converted
once per second. The recorder calls these from its encoder thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Rgb = npt.NDArray[np.uint8]
I420 = npt.NDArray[np.uint8]  # shape (h * 3 // 2, w): Y rows, then U, then V, packed

WIDTH, HEIGHT = 960, 540
FACE_BOX = (0, 0, 720, 540)  # x, y, w, h
DOCUMENT_BOX = (720, 0, 240, 180)
CLERK_BOX = (720, 180, 240, 180)
WATERMARK_BOX = (720, 360, 240, 180)
BACKGROUND = (24, 24, 24)
FONT_PATHS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)


@dataclass(frozen=True)
class Watermark:
    case_no: str
    terminal_name: str
    clerk_name: str

    def lines(self, at: float) -> tuple[str, ...]:
        stamp = datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"编号 {self.case_no}",
            f"终端 {self.terminal_name}",
            f"坐席 {self.clerk_name}",
            f"{stamp} UTC",
        )


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), 17)
    return ImageFont.load_default()


@lru_cache(maxsize=4)
def render_watermark(lines: tuple[str, ...]) -> Rgb:
    """The watermark box as an image; cached because the text changes once a second."""
    _, _, w, h = WATERMARK_BOX
    image = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((10, 14 + i * 38), line, fill=(255, 255, 255), font=_font())
    return np.asarray(image, dtype=np.uint8)


GAP_TEXT = "画面中断"
GAP_BACKGROUND = (96, 16, 16)


@lru_cache(maxsize=8)
def gap_tile(w: int, h: int) -> I420:
    """What a box shows while its camera sends nothing (a cut link): dark red, in words."""
    image = Image.new("RGB", (w, h), GAP_BACKGROUND)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((0, 0), GAP_TEXT, font=_font())
    draw.text(((w - (box[2] - box[0])) // 2, (h - (box[3] - box[1])) // 2), GAP_TEXT,
              fill=(255, 255, 255), font=_font())
    return to_i420(np.asarray(image, dtype=np.uint8))


def to_i420(image: Rgb) -> I420:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)


@lru_cache(maxsize=4)
def watermark_i420(lines: tuple[str, ...]) -> I420:
    return to_i420(render_watermark(lines))


@lru_cache(maxsize=1)
def _background() -> tuple[int, int, int]:
    patch = to_i420(np.full((2, 2, 3), BACKGROUND, dtype=np.uint8))
    return int(patch[0, 0]), int(patch[2, 0]), int(patch[2, 1])


def _planes(image: I420, w: int, h: int) -> tuple[I420, I420, I420]:
    flat = image.reshape(-1)
    y_size, c_size = w * h, (w // 2) * (h // 2)
    return (flat[:y_size].reshape(h, w),
            flat[y_size : y_size + c_size].reshape(h // 2, w // 2),
            flat[y_size + c_size : y_size + 2 * c_size].reshape(h // 2, w // 2))


def _place(canvas: tuple[I420, I420, I420], box: tuple[int, int, int, int],
           image: I420 | None) -> None:
    x, y, w, h = box  # every box edge is even, so the chroma boxes are exact halves
    targets = (canvas[0][y : y + h, x : x + w],
               canvas[1][y // 2 : (y + h) // 2, x // 2 : (x + w) // 2],
               canvas[2][y // 2 : (y + h) // 2, x // 2 : (x + w) // 2])
    if image is None or image.shape != (h * 3 // 2, w):
        for target, value in zip(targets, _background(), strict=True):
            target[:] = value
        return
    for target, plane in zip(targets, _planes(image, w, h), strict=True):
        target[:] = plane


def compose(face: I420 | None, document: I420 | None, clerk: I420 | None,
            mark: I420) -> I420:
    """The composite in I420; each input already scaled to its box (None: background)."""
    out = np.empty((HEIGHT * 3 // 2, WIDTH), dtype=np.uint8)
    canvas = _planes(out, WIDTH, HEIGHT)
    _place(canvas, FACE_BOX, face)
    _place(canvas, DOCUMENT_BOX, document)
    _place(canvas, CLERK_BOX, clerk)
    _place(canvas, WATERMARK_BOX, mark)
    return out

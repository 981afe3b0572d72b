"""The recording's picture: face large, document and clerk small, watermark burned in.

Pure functions over numpy images (RGB, uint8); the watermark is rendered with Pillow and
a CJK font so Chinese names show. The recorder calls these from its encoder thread.
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


def _place(canvas: Rgb, box: tuple[int, int, int, int], image: Rgb | None) -> None:
    x, y, w, h = box
    if image is None:
        canvas[y : y + h, x : x + w] = BACKGROUND
        return
    if image.shape[:2] != (h, w):
        image = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA),
                           dtype=np.uint8)
    canvas[y : y + h, x : x + w] = image


def compose(face: Rgb | None, document: Rgb | None, clerk: Rgb | None, mark: Rgb) -> Rgb:
    canvas = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    _place(canvas, FACE_BOX, face)
    _place(canvas, DOCUMENT_BOX, document)
    _place(canvas, CLERK_BOX, clerk)
    x, y, w, h = WATERMARK_BOX
    canvas[y : y + h, x : x + w] = mark
    return canvas

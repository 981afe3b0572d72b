"""Watermarked copies of ID documents and scans, with the original kept apart.

Chinese practice asks that every copy of an ID document says what it may be used for:
"仅供办理××使用，他用无效" plus the date, tiled diagonally over the whole image so it
cannot be cropped away. The original bytes are never altered; the copy records the
original's SHA-256 so the two stay linked. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from fpdf import FPDF
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
_ANGLE_DEG = 30.0
_OPACITY = 0.28  # readable through the watermark, yet not removable by contrast tweaks
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class WatermarkedCopy:
    """A derived, watermarked image and the fingerprints linking it to its original."""

    original_sha256: str
    jpeg: bytes
    sha256: str
    text: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def watermark_text(item: str, day: date) -> str:
    """The words of the watermark for a service item on a given day."""
    return f"仅供办理{item}使用，他用无效 {day.isoformat()}"


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size, index=0)


def _tile(size: tuple[int, int], text: str, second: str = "") -> Image.Image:
    """A transparent layer of diagonal text rows covering `size` (width, height); with
    `second`, each row has a second line under the first (who looked, and when)."""
    w, h = size
    font = _font(max(14, min(w, h) // 16))
    side = int(np.hypot(w, h)) + 1
    layer = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(layer)
    line = text + "    "
    step_x = int(draw.textlength(line, font=font))
    gap = int(font.size * 1.3)
    step_y = int(font.size * 3.2) + (gap if second else 0)
    for row, y in enumerate(range(0, side, step_y)):
        shift = (row % 2) * step_x // 2  # staggered rows, like banknote print
        for x in range(-step_x + shift, side, step_x):
            draw.text((x, y), line, font=font, fill=255)
            if second:
                draw.text((x, y + gap), second, font=font, fill=255)
    turned = layer.rotate(_ANGLE_DEG, resample=Image.Resampling.BICUBIC)
    left, top = (side - w) // 2, (side - h) // 2
    return turned.crop((left, top, left + w, top + h))


def watermark_image(image: NDArray[np.uint8], item: str, day: date,
                    second: str = "") -> NDArray[np.uint8]:
    """A copy of a BGR image with the diagonal tiled watermark blended in (`second`: a line
    of its own under each, e.g. the viewer's name and time)."""
    h, w = image.shape[:2]
    alpha = np.asarray(_tile((w, h), watermark_text(item, day), second),
                       np.float32) / 255.0 * _OPACITY
    ink = np.array([40.0, 40.0, 200.0], np.float32)  # red-ish in BGR, as stamps are
    base = image.astype(np.float32) if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
    out = base * (1.0 - alpha[..., None]) + ink * alpha[..., None]
    return np.asarray(np.clip(out, 0, 255), np.uint8)


def _encode_jpeg(image: NDArray[np.uint8]) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ValueError("could not encode the watermarked image")
    return bytes(data.tobytes())


def _decode(original: bytes) -> NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the original is not an image OpenCV can read")
    return np.asarray(image, np.uint8)


def make_copy(original: bytes, item: str, day: date, second: str = "") -> WatermarkedCopy:
    """The watermarked JPEG copy of an encoded image; `original` itself is left untouched."""
    marked = _encode_jpeg(watermark_image(_decode(original), item, day, second))
    text = watermark_text(item, day) + (f"\n{second}" if second else "")
    return WatermarkedCopy(sha256(original), marked, sha256(marked), text)


def scans_pdf(originals: Sequence[bytes], item: str, day: date) -> bytes:
    """One A4 PDF page per scan, each watermarked; originals' SHA-256 in the keywords."""
    if not originals:
        raise ValueError("a PDF needs at least one scan")
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(watermark_text(item, day))
    pdf.set_keywords(" ".join(f"sha256:{sha256(o)}" for o in originals))
    # the watermark's day, not the wall clock: same input, same PDF
    pdf.set_creation_date(datetime.combine(day, time(), tzinfo=UTC))
    for original in originals:
        copy = make_copy(original, item, day)
        img = Image.open(io.BytesIO(copy.jpeg))
        page_w, page_h, margin = 210.0, 297.0, 10.0
        scale = min((page_w - 2 * margin) / img.width, (page_h - 2 * margin) / img.height)
        w, h = img.width * scale, img.height * scale
        pdf.add_page()
        pdf.image(io.BytesIO(copy.jpeg), x=(page_w - w) / 2, y=margin, w=w, h=h)
    return bytes(pdf.output())

"""The viewer's mark on a replay: who is watching, when, 「仅供质检 · 禁止外传」.

Burned into every replayed picture on the server, so a screen recording or a downloaded
copy names who leaked it. A band along the bottom of the picture's face area (the name in
a fixed box of its own, the time, the warning) and a fainter copy of the name across the
middle, where cropping the band off would not remove it. Pure functions over I420
pictures; the masks are rendered with Pillow once per second (the time changes) and
blended into the luma and chroma planes with integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from media.composite import FONT_PATHS

I420 = npt.NDArray[np.uint8]
WARNING = "仅供质检 · 禁止外传"
BAND_H = 40
NAME_W = 260  # the name's own box at the band's left: the pixel test reads it there
FONT_PX = 24
FAINT_ALPHA = 90  # of 256: the middle copy
BAND_ALPHA = 160  # of 256: the band's dark background


@lru_cache(maxsize=2)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default()


@dataclass(frozen=True)
class ViewerMark:
    viewer_name: str
    viewer: str  # username

    def name_text(self) -> str:
        return f"{self.viewer_name}（{self.viewer}）"

    def band_text(self, at: float) -> str:
        stamp = datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp} UTC · {WARNING}"


def text_mask(text: str, width: int, height: int, size: int = FONT_PX,
              centred: bool = False) -> npt.NDArray[np.uint16]:
    """Where the text's pixels are, 0..256, on a width × height box."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    font = _font(size)
    top = (height - size) // 2 - 2
    left = max(8, (width - int(draw.textlength(text, font=font))) // 2) if centred else 8
    draw.text((left, top), text, fill=255, font=font)
    mask = (np.asarray(image, dtype=np.uint16) * 257) >> 8  # 255 → 256: full cover
    return np.asarray(mask, dtype=np.uint16)


@dataclass(frozen=True)
class _Overlay:
    """One picture's worth of blending: a target and a weight per luma / chroma pixel."""

    y0: int
    alpha_y: npt.NDArray[np.uint16]  # (h, w) of the band, 0..256
    target_y: npt.NDArray[np.uint16]
    alpha_c: npt.NDArray[np.uint16]  # (h/2, w/2): the band's chroma goes grey
    faint_y0: int
    faint: npt.NDArray[np.uint16]  # (h, w) of the middle copy


def band_width(width: int) -> int:
    """Three quarters of the picture (the composite's face area): the call's own
    watermark, bottom right, stays readable."""
    return width * 3 // 4 // 2 * 2


@lru_cache(maxsize=8)
def _overlay(name: str, band: str, width: int, height: int) -> _Overlay:
    band_w = band_width(width)
    name_mask = text_mask(name, NAME_W, BAND_H)
    rest = text_mask(band, band_w - NAME_W, BAND_H, FONT_PX - 4)
    text = np.concatenate([name_mask, rest], axis=1)
    background = np.full((BAND_H, band_w), BAND_ALPHA, dtype=np.uint16)
    # White text over a dark band over the picture, folded into one weight and target.
    t, b = text / 256.0, background / 256.0
    cover = t + b - t * b
    target = (t * 235 + (1 - t) * b * 16) / np.maximum(cover, 1e-6)
    faint = np.asarray((text_mask(name + " " + WARNING, width, 48, 30, centred=True)
                        * FAINT_ALPHA) >> 8, dtype=np.uint16)
    return _Overlay(
        y0=height - BAND_H, alpha_y=np.round(cover * 256).astype(np.uint16),
        target_y=np.round(target).astype(np.uint16),
        alpha_c=background[::2, ::2].copy(), faint_y0=(height - 48) // 2, faint=faint)


def burn(picture: I420, width: int, height: int, mark: ViewerMark, at: float) -> I420:
    """The picture (I420, shape (h*3/2, w)) with the viewer's mark, changed in place."""
    o = _overlay(mark.name_text(), mark.band_text(at), width, height)
    bw = o.alpha_y.shape[1]
    y = picture[:height]
    band = y[o.y0 : o.y0 + BAND_H, :bw].astype(np.uint16)
    y[o.y0 : o.y0 + BAND_H, :bw] = ((band * (256 - o.alpha_y) + o.target_y * o.alpha_y) >> 8
                                    ).astype(np.uint8)
    middle = y[o.faint_y0 : o.faint_y0 + o.faint.shape[0]].astype(np.uint16)
    y[o.faint_y0 : o.faint_y0 + o.faint.shape[0]] = (
        (middle * (256 - o.faint) + 235 * o.faint) >> 8).astype(np.uint8)
    chroma = picture[height:].reshape(2, height // 2, width // 2)
    cy0 = o.y0 // 2
    part = chroma[:, cy0 : cy0 + BAND_H // 2, : bw // 2].astype(np.uint16)
    chroma[:, cy0 : cy0 + BAND_H // 2, : bw // 2] = (
        (part * (256 - o.alpha_c) + 128 * o.alpha_c) >> 8).astype(np.uint8)
    return picture


def name_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the viewer's name in a replayed picture."""
    return 0, height - BAND_H, NAME_W, BAND_H

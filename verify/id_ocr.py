"""Reading the 18-character number off an ID card scan, and checking it (GB 11643).

Tesseract (Debian `tesseract-ocr`) reads the number field only, restricted to digits and
X. Two differently prepared copies of the field are read; a number is reported only when
both reads agree and the checksum, birth date and region pass. Anything else is reported
unreadable or invalid, never a best guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import cv2
import numpy as np
import pytesseract
from numpy.typing import NDArray

from verify.idnumber import check_id_number

# The number field on the portrait side of a resident ID card, as shares of the card
# (left, top, right, bottom), with a margin for a slightly off warp.
NUMBER_FIELD = (0.26, 0.76, 0.97, 0.95)
_CARD_WIDTH = 1012  # 300 dpi across 85.6 mm
_TESS_CONFIG = "--psm 7 -c tessedit_char_whitelist=0123456789X"

ReadStatus = Literal["valid", "invalid", "unreadable"]


@dataclass(frozen=True)
class IdNumberReading:
    """What the card says: `number` is set only when the read is certain and valid."""

    status: ReadStatus
    number: str | None
    confidence: float  # 0..1, Tesseract's lowest word confidence over the agreeing reads
    reason: str  # user-facing Chinese, empty when valid

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "number": self.number,
            "confidence": round(self.confidence, 3),
            "reason": self.reason,
        }


def number_field(card: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The grey crop of the number field from a flat card scan (landscape, upright)."""
    h = round(_CARD_WIDTH * card.shape[0] / card.shape[1])
    resized = cv2.resize(card, (_CARD_WIDTH, h), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY) if resized.ndim == 3 else resized
    x0, y0, x1, y1 = NUMBER_FIELD
    return np.asarray(
        gray[round(y0 * h) : round(y1 * h), round(x0 * _CARD_WIDTH) : round(x1 * _CARD_WIDTH)],
        np.uint8,
    )


def _flatten(field: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The field divided by its own background (closing removes the dark print), so a
    shadow or a light gradient across the card does not decide the threshold."""
    background = cv2.morphologyEx(field, cv2.MORPH_CLOSE, np.ones((31, 31), np.uint8))
    flat = field.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0)
    return np.asarray(np.clip(flat * 255.0, 0, 255), np.uint8)


def _variants(field: NDArray[np.uint8]) -> list[NDArray[np.uint8]]:
    """Independent preparations of the field: Otsu on the shadow-free copy, a local
    threshold at a larger scale, and shadow-free grey at double scale. Errors of one
    rarely repeat in another."""
    flat = _flatten(field)
    smooth = cv2.GaussianBlur(flat, (3, 3), 0)
    _, otsu = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    big = cv2.resize(field, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    local = cv2.adaptiveThreshold(
        big, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 41, 15
    )
    grey = cv2.resize(flat, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    pad = [
        cv2.copyMakeBorder(v, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
        for v in (otsu, local, grey)
    ]
    return [np.asarray(p, np.uint8) for p in pad]


def _ocr(img: NDArray[np.uint8]) -> tuple[str, float]:
    """Text and lowest word confidence (0..1) of one single-line read."""
    try:
        data = pytesseract.image_to_data(
            img, config=_TESS_CONFIG, output_type=pytesseract.Output.DICT
        )
    except pytesseract.TesseractError:
        return "", 0.0  # Tesseract gives up on some degenerate crops (e.g. all white)
    words = [
        (str(t).strip(), float(c))
        for t, c in zip(data["text"], data["conf"], strict=True)
        if str(t).strip()
    ]
    if not words:
        return "", 0.0
    return "".join(t for t, _ in words), min(c for _, c in words) / 100.0


_UNREADABLE = "身份证号码看不清，请重新拍摄或人工核对"


def _read_upright(card: NDArray[np.uint8], today: date) -> IdNumberReading:
    """A number counts only when two reads agree on it and it passes the checks."""
    reads: list[tuple[str, float]] = []
    invalid: IdNumberReading | None = None
    for variant in _variants(number_field(card)):
        text, conf = _ocr(variant)
        reads.append((text, conf))
        agreeing = [c for t, c in reads if t == text]
        if len(text) != 18:
            continue
        check = check_id_number(text, today)
        if not check.valid:
            reason = f"读出的号码未通过校验（{check.reason}），请人工核对"
            invalid = IdNumberReading("invalid", None, conf, reason)
        elif len(agreeing) >= 2:
            return IdNumberReading("valid", check.normalized, min(agreeing), "")
    if invalid is not None:
        return invalid
    return IdNumberReading("unreadable", None, max(c for _, c in reads), _UNREADABLE)


def read_id_number(card: NDArray[np.uint8], today: date) -> IdNumberReading:
    """Read the number from a flat card scan; tries the card upside down too."""
    first = _read_upright(card, today)
    if first.status == "valid":
        return first
    turned = _read_upright(np.ascontiguousarray(card[::-1, ::-1]), today)
    if turned.status == "valid":
        return turned
    # "invalid" (a full-length read that fails the checks) says more than "unreadable"
    return first if first.status == "invalid" or turned.status != "invalid" else turned

"""Quality verdicts for a document frame: what to fix, in plain Chinese, and the measures.

Pure: takes the frame and what `document_detect` found, returns measures and a verdict.
The first defect is the one the applicant is asked to fix first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from verify.document_config import DocumentThresholds
from verify.document_detect import (
    KIND_SIZE_MM,
    DetectedDocument,
    corner_angles_deg,
    opposite_side_ratio,
    source_dpi,
    warp_document,
)
from verify.sharpness import laplacian_variance

Defect = Literal[
    "not_found", "cut_off", "too_small", "too_dark", "too_bright", "too_skewed", "blur", "glare"
]

# Order matters: the first defect found is the verdict.
REASONS: dict[Defect, str] = {
    "too_dark": "太暗",
    "too_bright": "太亮，请避开强光",
    "not_found": "没有找到材料，请把材料放在镜头下",
    "cut_off": "材料没有拍全",
    "too_small": "材料太小，请拿近一些",
    "too_skewed": "请把材料放平",
    "blur": "拍糊了，请保持不动",
    "glare": "反光太强，请调整角度",
}

_MEASURE_SIDE = 800  # long side of the flattened copy the measures run on
_SATURATED = 250
_INK_STEP = 35


@dataclass(frozen=True)
class QualityMeasures:
    """Numbers behind a verdict; NaN where a measure does not apply (no document)."""

    brightness: float  # mean grey of the document (of the frame when none was found)
    saturated_fraction: float  # share of saturated pixels
    frame_saturated_fraction: float  # the same over the whole frame
    glare_fraction: float  # share covered by saturated blobs (isolated pixels ignored)
    sharpness: float  # variance of the Laplacian on the flattened copy
    edge_blur: float  # border step width, per mille of the frame's short side
    area_fraction: float
    corner_angle_dev_deg: float
    side_ratio: float
    source_dpi: float
    aspect: float = math.nan  # long / short side, mean of opposite sides
    saturation: float = math.nan  # mean colour saturation of the flattened region
    ink_fraction: float = math.nan  # share of print: pixels clearly darker than the paper


@dataclass(frozen=True)
class QualityVerdict:
    measures: QualityMeasures
    defects: tuple[Defect, ...]

    @property
    def ok(self) -> bool:
        return not self.defects

    @property
    def verdict(self) -> Defect | Literal["ok"]:
        return self.defects[0] if self.defects else "ok"

    @property
    def reasons(self) -> list[str]:
        return [REASONS[d] for d in self.defects]

    def as_dict(self) -> dict[str, object]:
        m = {
            k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4))
            for k, v in asdict(self.measures).items()
        }
        return {"verdict": self.verdict, "ok": self.ok, "reasons": self.reasons, "measures": m}


def _measure_size(doc: DetectedDocument) -> tuple[int, int]:
    mm_w, mm_h = KIND_SIZE_MM[doc.kind]
    scale = _MEASURE_SIDE / max(mm_w, mm_h)
    return round(mm_w * scale), round(mm_h * scale)


def _light(gray: NDArray[np.uint8]) -> tuple[float, float, float]:
    """Mean grey, saturated share, and the share of saturated blobs (glare)."""
    sat = (gray >= _SATURATED).astype(np.uint8)
    blobs = cv2.morphologyEx(sat, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return float(gray.mean()), float(sat.mean()), float(blobs.mean())


def measure(frame: NDArray[np.uint8], doc: DetectedDocument | None) -> QualityMeasures:
    """Quality measures of the document in the frame (frame-wide light when none found)."""
    nan = math.nan
    whole = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(
        whole, (320, round(320 * whole.shape[0] / whole.shape[1])), interpolation=cv2.INTER_AREA
    )
    fb, fs, fg = _light(np.asarray(small, np.uint8))
    if doc is None:
        return QualityMeasures(fb, fs, fs, fg, nan, nan, 0.0, nan, nan, nan)
    flat = warp_document(frame, doc.corners, _measure_size(doc))
    gray = cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY) if flat.ndim == 3 else flat
    b, s, g = _light(np.asarray(gray, np.uint8))
    sharp = laplacian_variance(gray)
    short = min(doc.frame_size)
    edge_blur = doc.edge_spread_px / short * 1000.0
    angle = float(np.max(np.abs(corner_angles_deg(doc.corners) - 90.0)))
    return QualityMeasures(
        b,
        s,
        fs,
        g,
        sharp,
        edge_blur,
        doc.area_fraction,
        angle,
        opposite_side_ratio(doc.corners),
        source_dpi(doc),
        _aspect(doc),
        _saturation(flat),
        _ink(np.asarray(gray, np.uint8)),
    )


def _aspect(doc: DetectedDocument) -> float:
    c = doc.corners
    sides = [float(np.linalg.norm(c[(i + 1) % 4] - c[i])) for i in range(4)]
    a, b = (sides[0] + sides[2]) / 2, (sides[1] + sides[3]) / 2
    return max(a, b) / max(min(a, b), 1e-6)


def _saturation(flat: NDArray[np.uint8]) -> float:
    if flat.ndim != 3:
        return 0.0
    return float(cv2.cvtColor(flat, cv2.COLOR_BGR2HSV)[:, :, 1].mean())


def _ink(gray: NDArray[np.uint8]) -> float:
    """Share of pixels darker than the paper around them by a clear step (print, a photo)."""
    # on a half-size copy: the median's window then spans the same paper at a quarter cost
    small = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2),
                       interpolation=cv2.INTER_AREA)
    paper = cv2.medianBlur(small, 11).astype(np.int16)
    return float(((paper - small.astype(np.int16)) > _INK_STEP).mean())


def _not_a_document(m: QualityMeasures, doc: DetectedDocument, th: DocumentThresholds) -> bool:
    """A region the detector outlined that is no paper: a square sticky note, a coloured
    object, a blank tabletop or box running off the frame. The shape is asked only of a
    whole region seen straight on (a cut-off or tilted page has any aspect), print only where
    it would show: a sharp, lit region of readable size."""
    straight = (m.corner_angle_dev_deg <= th.max_corner_angle_deg
                and m.side_ratio <= th.max_side_ratio)
    if straight and not _cut_off(doc, th) \
            and not th.min_doc_aspect <= m.aspect <= th.max_doc_aspect:
        return True
    if m.saturation > th.max_doc_saturation:
        return True
    readable = m.area_fraction >= th.min_area_fraction or doc.touches_edge  # cut off: close
    shows_print = (readable and m.brightness >= th.min_brightness
                   and not m.edge_blur > th.max_edge_blur)
    return shows_print and m.ink_fraction < th.min_ink_fraction


def _cut_off(doc: DetectedDocument, th: DocumentThresholds) -> bool:
    w, h = doc.frame_size
    margin = th.edge_margin_fraction * min(w, h)
    c = doc.corners
    inside = (
        (c[:, 0] >= margin)
        & (c[:, 0] <= w - 1 - margin)
        & (c[:, 1] >= margin)
        & (c[:, 1] <= h - 1 - margin)
    )
    return doc.touches_edge or not bool(inside.all())


def judge(
    m: QualityMeasures, doc: DetectedDocument | None, th: DocumentThresholds
) -> QualityVerdict:
    """Turn measures into defects, most pressing first."""
    found: list[Defect] = []
    outlined = doc is not None  # the measures are of an outlined region, not the frame
    if doc is not None and _not_a_document(m, doc, th):
        doc = None  # judged as an empty view: never "cut off" or "too small", never good
    if doc is None:
        found.append("not_found")
    elif _cut_off(doc, th):
        found.append("cut_off")
    if doc is not None and m.area_fraction < th.min_area_fraction:
        found.append("too_small")
    bright_limit = th.max_brightness if outlined else th.max_frame_brightness
    if m.brightness < th.min_brightness:
        found.append("too_dark")
    elif (
        m.brightness > bright_limit
        or m.saturated_fraction > th.max_saturated_fraction
        or m.frame_saturated_fraction > th.max_saturated_fraction
    ):
        found.append("too_bright")
    if doc is not None:
        if m.corner_angle_dev_deg > th.max_corner_angle_deg or m.side_ratio > th.max_side_ratio:
            found.append("too_skewed")
        blurred = (
            m.edge_blur > th.max_edge_blur
            if not math.isnan(m.edge_blur)
            else m.sharpness < th.min_sharpness
        )
        if blurred:
            found.append("blur")
        if "too_bright" not in found and m.glare_fraction > th.max_glare_fraction:
            found.append("glare")
    order = list(REASONS)  # light first: it explains a missing or ragged outline too
    return QualityVerdict(m, tuple(sorted(found, key=order.index)))


def assess(
    frame: NDArray[np.uint8], doc: DetectedDocument | None, th: DocumentThresholds
) -> QualityVerdict:
    """Measures and verdict for one frame."""
    return judge(measure(frame, doc), doc, th)

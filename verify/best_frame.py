"""Choosing the frame to capture from a window of frames: still, acceptable, sharpest.

Pure: the caller assesses each frame (detect + quality) and passes the results in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from verify.document_config import DocumentThresholds
from verify.document_detect import DetectedDocument
from verify.document_quality import REASONS, Defect, QualityVerdict


@dataclass(frozen=True)
class AssessedFrame:
    """One frame of the window: what was found and what quality said."""

    doc: DetectedDocument | None
    quality: QualityVerdict


@dataclass(frozen=True)
class BestFrame:
    """The frame to capture (index into the window), or None with what to fix first."""

    index: int | None
    stable: bool
    reasons: tuple[str, ...]


def motion(a: DetectedDocument | None, b: DetectedDocument | None) -> float:
    """Largest corner displacement between two frames, as a share of the frame diagonal."""
    if a is None or b is None:
        return math.inf
    w, h = b.frame_size
    return float(np.max(np.linalg.norm(a.corners - b.corners, axis=1)) / math.hypot(w, h))


def still_since(window: Sequence[AssessedFrame], th: DocumentThresholds) -> list[bool]:
    """For each frame: has the document been still for `stable_frames` frames up to here?"""
    out: list[bool] = []
    run = 0
    for i, f in enumerate(window):
        if f.doc is None:
            run = 0
        elif i == 0 or motion(window[i - 1].doc, f.doc) > th.max_motion_fraction:
            run = 1
        else:
            run += 1
        out.append(run >= th.stable_frames)
    return out


def _rank(f: AssessedFrame) -> tuple[float, float, float]:
    m = f.quality.measures
    blur = m.edge_blur if not math.isnan(m.edge_blur) else math.inf
    return (blur, m.glare_fraction, -m.sharpness)


def choose_best(window: Sequence[AssessedFrame], th: DocumentThresholds) -> BestFrame:
    """The sharpest acceptable frame among those where the document has been still."""
    still = still_since(window, th)
    usable = [i for i, f in enumerate(window) if f.quality.ok and still[i]]
    if usable:
        return BestFrame(min(usable, key=lambda i: _rank(window[i])), True, ())
    if any(f.quality.ok for f in window):
        return BestFrame(None, False, ("请保持不动",))
    counts: dict[Defect, int] = {}
    for f in window:
        for d in f.quality.defects[:1]:
            counts[d] = counts.get(d, 0) + 1
    if not counts:
        return BestFrame(None, False, (REASONS["not_found"],))
    commonest = max(counts, key=lambda d: counts[d])
    return BestFrame(None, any(still), (REASONS[commonest],))

"""Document capture thresholds: one frozen dataclass, defaults tuned on generated frames.

No heavy imports, so settings can build it without loading OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentThresholds:
    """Limits that turn quality measures into verdicts; see verify/document_quality.py."""

    # Width of the paper's border step, per mille of the frame's short side: above = blurred.
    max_edge_blur: float = 8.0
    # Variance of the Laplacian on the flattened document (800 px long side), used when the
    # border step cannot be measured: below = blurred.
    min_sharpness: float = 60.0
    # Share of the document covered by saturated blobs (glare) above which text is lost.
    max_glare_fraction: float = 0.01
    # Share of saturated document pixels above which the whole frame is overexposed.
    max_saturated_fraction: float = 0.35
    # Mean grey level (0..255) of the document: below is too dark, above is too bright.
    min_brightness: float = 70.0
    max_brightness: float = 240.0
    # Mean grey of the whole frame above which, with no document found, the light is too harsh.
    max_frame_brightness: float = 200.0
    # Document area as a share of the frame: below is too small to read.
    min_area_fraction: float = 0.08
    # Largest deviation of a corner angle from 90 degrees: above is too skewed (not flat).
    max_corner_angle_deg: float = 15.0
    # Largest ratio between opposite sides: above is too skewed (tilted towards the camera).
    max_side_ratio: float = 1.25
    # A corner this close to the frame edge (share of the short frame side) counts as cut off.
    edge_margin_fraction: float = 0.008
    # Best-frame stability: corner motion between frames (share of the diagonal) still "still".
    max_motion_fraction: float = 0.01
    # Frames in a row that must be still before a capture.
    stable_frames: int = 3
    # What a document is at all (else "not found", never "cut off" or "too small"): its
    # long/short side ratio (A4 1.41, card 1.59; perspective widens it), paper's low colour
    # saturation (0..255), and print on it: the share of pixels clearly darker than the
    # paper around them, required where the region is large and sharp enough to show it.
    min_doc_aspect: float = 1.2
    max_doc_aspect: float = 2.0
    max_doc_saturation: float = 85.0
    min_ink_fraction: float = 0.003

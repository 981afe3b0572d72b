"""Thresholds for face matching, live-frame gates and liveness; defaults are the calibrated ones.

No heavy imports: core.settings builds these from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceMatchConfig:
    # Decision on the median distance over the best frames; picked by
    # `bench/calibrate_face.py --seeds 5` (no false accept, 0.08 below the closest impostor).
    pass_below: float = 0.53
    fail_above: float = 0.60
    best_k: int = 3  # how many of the best live frames are aggregated
    min_frames: int = 2  # fewer usable live frames than this -> manual review
    # A tiny card portrait encodes noisily: fail only on a clearly larger distance.
    small_portrait_px: int = 64
    small_portrait_fail_above: float = 0.77
    # ID portrait: faces smaller than this (px wide) are upsampled before encoding.
    portrait_face_px: int = 160
    portrait_jitters: int = 1  # more jitters did not separate the pairs better here
    live_jitters: int = 1
    # Live-frame gates.
    detect_width: int = 640  # frames wider than this are shrunk for detection only
    min_face_px: int = 90
    min_sharpness: float = 15.0  # variance of the Laplacian on a 128 px wide face crop
    min_brightness: float = 50.0
    max_brightness: float = 215.0
    max_clipped: float = 0.25  # fraction of face pixels at 0 or 255
    max_yaw_ratio: float = 0.22  # |nose offset from the eye midpoint| / eye distance
    max_roll_deg: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.pass_below <= self.fail_above:
            raise ValueError("face thresholds need 0 < pass_below <= fail_above")
        if self.small_portrait_fail_above < self.fail_above:
            raise ValueError("small_portrait_fail_above must not be below fail_above")
        if self.best_k < 1 or self.min_frames < 1:
            raise ValueError("best_k and min_frames must be at least 1")


@dataclass(frozen=True)
class LivenessConfig:
    timeout_s: float = 12.0  # the whole challenge must be done within this
    turn_ratio: float = 0.10  # yaw ratio change that counts as a turn (about 15-20 degrees)
    nod_ratio: float = 0.08  # relative growth of the eye-to-nose height that counts as a nod
    nod_max_eye_change: float = 0.06  # a nod keeps the eye distance within this fraction
    return_ratio: float = 0.06  # back to frontal between moves
    baseline_frames: int = 3  # frontal frames that set the neutral pose
    min_texture_change: float = 6.0  # largest mean abs change of the aligned face, 0..255
    max_identical_frac: float = 0.5  # share of consecutive identical frames tolerated
    blink_ratio: float = 0.7  # eyes closed: openness below this share of the person's own
    blink_min_openness: float = 0.2  # an own openness under this cannot show a blink
    blink_max_shift: float = 0.15  # eyes moved less than this (eye distances) since the last frame

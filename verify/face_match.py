"""Face-to-ID match: the ID portrait against the best live frames, pass / fail / review.

The decision takes the median distance over the best K gated frames (one lucky frame does
not pass), with two thresholds: pass below, fail above, manual review in between.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from verify import face_model
from verify.face_config import FaceMatchConfig
from verify.face_model import RGB, Encoding
from verify.face_quality import GATE_REASONS, GatedFrame, gate_frame
from verify.portrait import IdPortrait, extract_portrait

MatchDecision = Literal["pass", "fail", "review"]

REASON_PASS = "人证比对一致"
REASON_FAIL = "人证比对不一致"
REASON_BAND = "相似度处于人工复核区间"
REASON_FEW_FRAMES = "可用的人脸画面不足"
REASON_SEVERAL = "画面中有多张人脸，请确认只有申请人本人在镜头前"


@dataclass(frozen=True)
class MatchVerdict:
    decision: MatchDecision
    distance: float | None  # median over the frames used
    frames_used: list[int]  # indices of the live frames that were matched
    distances: list[float]  # per frame used, same order
    skipped: dict[str, int]  # gate code -> frames skipped for it
    reasons: list[str]  # Chinese, for the clerk
    portrait_face_px: int
    card_found: bool
    pass_below: float
    fail_above: float  # the one applied (raised for a tiny portrait)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "distance": None if self.distance is None else round(self.distance, 4),
            "frames_used": self.frames_used,
            "distances": [round(d, 4) for d in self.distances],
            "skipped": self.skipped,
            "reasons": self.reasons,
            "portrait_face_px": self.portrait_face_px,
            "card_found": self.card_found,
            "thresholds": {"pass_below": self.pass_below, "fail_above": self.fail_above},
            **self.extra,
        }


def fail_threshold(portrait_face_px: int, config: FaceMatchConfig) -> float:
    if portrait_face_px < config.small_portrait_px:
        return config.small_portrait_fail_above
    return config.fail_above


def best_frames(frames: Sequence[GatedFrame], k: int) -> list[int]:
    """Indices of the k best frames that passed the gates, best first."""
    ok = [i for i, f in enumerate(frames) if f.ok]
    return sorted(ok, key=lambda i: -frames[i].score)[:k]


def decide(
    portrait: IdPortrait,
    frames: Sequence[GatedFrame],
    distances: dict[int, float],
    config: FaceMatchConfig,
) -> MatchVerdict:
    """The verdict from a portrait, gated frames and the distances of the frames matched."""
    skipped = dict(Counter(f.gate for f in frames if not f.ok))
    fail_above = fail_threshold(portrait.face_px, config)
    used = sorted(distances)
    values = [distances[i] for i in used]
    median = statistics.median(values) if values else None

    def verdict(decision: MatchDecision, reasons: list[str]) -> MatchVerdict:
        return MatchVerdict(
            decision, median, used, values, skipped, reasons,
            portrait.face_px, portrait.card_found, config.pass_below, fail_above,
        )  # fmt: skip

    if not portrait.ok:
        return verdict("review", [portrait.reason])
    several = skipped.get("several_faces", 0) > 0
    if median is None or len(values) < config.min_frames:
        reasons = [REASON_FEW_FRAMES] + [GATE_REASONS[g] for g in _by_count(skipped)]
        return verdict("review", reasons)
    if median > fail_above:
        return verdict("fail", [REASON_FAIL] + ([REASON_SEVERAL] if several else []))
    if several:
        return verdict("review", [REASON_SEVERAL])
    if median < config.pass_below:
        return verdict("pass", [REASON_PASS])
    return verdict("review", [REASON_BAND])


def _by_count(skipped: dict[str, int]) -> list[str]:
    return [g for g, _ in sorted(skipped.items(), key=lambda kv: -kv[1])]


def match_frames(
    portrait: IdPortrait, live: Sequence[RGB], config: FaceMatchConfig | None = None
) -> MatchVerdict:
    """Gate every live frame, encode the best K and decide."""
    config = config or FaceMatchConfig()
    frames = [gate_frame(image, config) for image in live]
    distances: dict[int, float] = {}
    if portrait.encoding is not None:
        for i in best_frames(frames, config.best_k):
            encoding = face_model.encode(live[i], frames[i].shape, config.live_jitters)
            distances[i] = face_model.distance(portrait.encoding, encoding)
    return decide(portrait, frames, distances, config)


@dataclass(frozen=True)
class LiveFace:
    """One live frame gated and, if it passed, encoded: small and picklable for a process pool."""

    gated: GatedFrame  # without the dlib shape
    encoding: Encoding | None


def assess_live_frame(image: RGB, config: FaceMatchConfig | None = None) -> LiveFace:
    """Detect, gate and (if the frame passes) encode one live frame, as a worker does."""
    config = config or FaceMatchConfig()
    gated = gate_frame(image, config)
    encoding = None
    if gated.ok:
        encoding = face_model.encode(image, gated.shape, config.live_jitters)
    return LiveFace(replace(gated, shape=None), encoding)


def decide_encoded(
    portrait: IdPortrait, faces: Sequence[LiveFace], config: FaceMatchConfig | None = None
) -> MatchVerdict:
    """The verdict over frames that were already encoded (e.g. in a process pool)."""
    config = config or FaceMatchConfig()
    frames = [f.gated for f in faces]
    distances: dict[int, float] = {}
    if portrait.encoding is not None:
        for i in best_frames(frames, config.best_k):
            encoding = faces[i].encoding
            if encoding is not None:
                distances[i] = face_model.distance(portrait.encoding, encoding)
    return decide(portrait, frames, distances, config)


def match(
    card_image: RGB, live: Sequence[RGB], config: FaceMatchConfig | None = None
) -> MatchVerdict:
    """Extract the ID portrait from a document-camera image and match it to live frames."""
    config = config or FaceMatchConfig()
    return match_frames(extract_portrait(card_image, config), live, config)

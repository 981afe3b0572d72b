"""The verdict of one identity check from its parts: the face match and the liveness.

Weak evidence (an old small card photo, too few usable frames, a challenge not finished in
time) lands in manual review; only a clear mismatch or a liveness attack (a still picture,
a frozen or replayed stream) fails. Pure: the media worker calls it with what it gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from verify.face_match import REASON_SEVERAL, MatchVerdict
from verify.liveness import REASON_FROZEN, REASON_STATIC, LivenessVerdict

Decision = Literal["pass", "review", "fail"]
REASON_NO_FACE = "未检测到人脸，请正对屏幕上方的摄像头"


@dataclass(frozen=True)
class CheckVerdict:
    decision: Decision
    reasons: list[str]


def _attack(liveness: LivenessVerdict, moves: int = 2) -> bool:
    """A frozen or replayed stream; or moves "done" by a face whose texture never changed
    (a flat picture tilted). A face that did not move before the time ran out may be an
    elderly applicant on a poor line: that is for a person to judge, not a failure."""
    if liveness.status != "fail":
        return False
    if liveness.reason == REASON_FROZEN:
        return True
    return liveness.reason == REASON_STATIC and len(liveness.completed) >= moves


def combine(match: MatchVerdict, liveness: LivenessVerdict, face_frames: int,
            several_frames: int) -> CheckVerdict:
    """`face_frames`: frames with one face; `several_frames`: frames with more than one."""
    if face_frames == 0:
        return CheckVerdict("review", [REASON_SEVERAL] if several_frames else [REASON_NO_FACE])
    if _attack(liveness):
        return CheckVerdict("fail", [liveness.reason, *match.reasons])
    if match.decision == "fail":
        return CheckVerdict("fail", list(match.reasons))
    reasons: list[str] = []
    if liveness.status != "pass":
        reasons.append(liveness.reason)
    if several_frames and REASON_SEVERAL not in match.reasons:
        reasons.append(REASON_SEVERAL)
    if match.decision == "review" or reasons:
        return CheckVerdict("review", [*reasons, *(r for r in match.reasons if r not in reasons)])
    return CheckVerdict("pass", [*match.reasons, liveness.reason])

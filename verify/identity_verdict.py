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
_ATTACKS = (REASON_STATIC, REASON_FROZEN)


@dataclass(frozen=True)
class CheckVerdict:
    decision: Decision
    reasons: list[str]


def combine(match: MatchVerdict, liveness: LivenessVerdict, face_frames: int,
            several_frames: int) -> CheckVerdict:
    """`face_frames`: frames with one face; `several_frames`: frames with more than one."""
    if face_frames == 0:
        return CheckVerdict("review", [REASON_SEVERAL] if several_frames else [REASON_NO_FACE])
    if liveness.status == "fail" and liveness.reason in _ATTACKS:
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

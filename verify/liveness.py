"""Liveness: an active head-movement challenge plus passive checks, as a pure state machine.

Frames go in with their timestamps (`LivenessSession.feed`), a verdict comes out. The pose
comes from the 5-point landmarks only: the nose's offset from the eye midpoint, measured in
the frame of the eye axis, so moving, scaling or rolling a flat picture does not change it,
while a real head turn or nod does. A blink is the eyes' openness (`verify.eyes`) falling
well below the same person's own value of the moments before, with the head steady.

Passive checks that a static picture cannot satisfy: repeated identical frames (a frozen or
replayed stream) and no change of the face's texture once aligned on the landmarks (a photo
moved around in front of the camera). A moiré / screen check is not included: it was not
reliable enough on the material we have.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from verify.eyes import openness
from verify.face_config import LivenessConfig
from verify.face_model import RGB, FivePoints

Challenge = Literal["left", "right", "nod", "blink"]
LivenessStatus = Literal["pending", "pass", "fail"]
HEAD_MOVES: tuple[Challenge, ...] = ("left", "right", "nod")
CHALLENGES: tuple[Challenge, ...] = (*HEAD_MOVES, "blink")

PROMPTS: dict[Challenge, str] = {"left": "向左转头", "right": "向右转头", "nod": "点头",
                                 "blink": "眨眼"}
REASON_PASS = "活体检测通过"
REASON_TIMEOUT = "未在规定时间内完成动作"
REASON_STATIC = "画面中的人脸没有变化，疑似照片或屏幕"
REASON_FROZEN = "画面重复不变，疑似静止画面或录像回放"

_THUMB = 48
_EYES_AT = ((15.0, 18.0), (33.0, 18.0))  # where the eye centres land in the aligned thumbnail
_NEUTRAL_YAW = 0.3  # a frame this far off frontal cannot set the baseline


def new_challenge(rng: random.Random, steps: int = 2) -> list[Challenge]:
    """A random order of distinct moves, so a recording of a previous session fails."""
    return rng.sample(list(CHALLENGES), steps)


def parse_challenge(text: str) -> list[Challenge]:
    moves: list[Challenge] = []
    for part in text.split(","):
        name = part.strip().lower()
        if name not in CHALLENGES:
            raise ValueError(f"unknown move {part!r}; expected left, right, nod or blink")
        moves.append(name)
    if not moves:
        raise ValueError("the challenge needs at least one move")
    return moves


@dataclass(frozen=True)
class LivenessFrame:
    """What the session needs from one frame: time, face count, landmarks, thumbnails."""

    t: float
    faces: int
    points: FivePoints | None
    thumb: npt.NDArray[np.float32] | None  # the face aligned on the eyes, gray
    digest: npt.NDArray[np.float32]  # the whole frame, tiny, gray
    eyes: float | None = None  # how open the eyes are (verify.eyes), with one face


@dataclass(frozen=True)
class LivenessVerdict:
    status: LivenessStatus
    reason: str
    completed: list[Challenge]
    prompt: str  # what the applicant should do now (Chinese), empty when decided
    frames: int
    elapsed_s: float

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reason": self.reason,
            "completed": self.completed,
            "prompt": self.prompt,
            "frames": self.frames,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _digest(image: RGB) -> npt.NDArray[np.float32]:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA), np.float32)


def _thumb(image: RGB, points: FivePoints) -> npt.NDArray[np.float32]:
    src = np.array([np.mean(points.eye_a, axis=0), np.mean(points.eye_b, axis=0)], np.float32)
    dst = np.array(_EYES_AT, np.float32)
    # Similarity from two points: solve with a third point perpendicular to the eye axis.
    perp_src = src[0] + np.array([src[0][1] - src[1][1], src[1][0] - src[0][0]], np.float32)
    perp_dst = dst[0] + np.array([dst[0][1] - dst[1][1], dst[1][0] - dst[0][0]], np.float32)
    matrix = cv2.getAffineTransform(np.vstack([src, perp_src]), np.vstack([dst, perp_dst]))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    aligned = cv2.warpAffine(gray, matrix, (_THUMB, _THUMB), flags=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(aligned, (0, 0), 1.2), np.float32)


# Points are kept in units of a frame this wide: WebRTC changes the video's size with the
# bandwidth during a check, and the eye distance compared with the baseline must not.
REFERENCE_WIDTH = 640.0


def frame_points(points: FivePoints, image_width: int) -> FivePoints:
    return points.scaled(REFERENCE_WIDTH / max(image_width, 1))


def observe(image: RGB, t: float, detect_width: int = 640) -> LivenessFrame:
    """Detect and landmark one frame (dlib) into what the state machine consumes."""
    from verify import face_model

    boxes = face_model.detect(image, 0, detect_width)
    if len(boxes) != 1:
        return LivenessFrame(t, len(boxes), None, None, _digest(image))
    _, points = face_model.landmarks(image, boxes[0])
    return LivenessFrame(t, 1, frame_points(points, image.shape[1]), _thumb(image, points),
                         _digest(image), openness(image, points))


@dataclass
class _Baseline:
    yaw: float
    pitch: float
    eye_distance: float
    thumb: npt.NDArray[np.float32]


@dataclass
class LivenessSession:
    """One challenge: feed frames in time order; the verdict stays once it is pass or fail."""

    challenge: Sequence[Challenge]
    config: LivenessConfig = field(default_factory=LivenessConfig)
    started_at: float | None = None
    _frames: int = 0
    _identical: int = 0
    _last_digest: npt.NDArray[np.float32] | None = None
    _neutral: list[LivenessFrame] = field(default_factory=list)
    _baseline: _Baseline | None = None
    _step: int = 0
    _away: bool = False  # a move is in progress; the next starts once back to neutral
    _texture_change: float = 0.0
    _verdict: LivenessVerdict | None = None
    _last_t: float = 0.0
    # the eyes' openness of the last frontal frames with open eyes: what a blink falls from
    _open_eyes: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    _last_points: FivePoints | None = None
    _moves: list[Challenge] = field(init=False)

    def __post_init__(self) -> None:
        self._moves = list(self.challenge)

    @property
    def moves(self) -> list[Challenge]:
        """The moves asked for: the challenge, with a blink replaced if the eyes can't show one."""
        return list(self._moves)

    @property
    def blink_replaced(self) -> bool:
        """The eyes could not be measured: a head move was asked in place of a blink."""
        return self._moves != list(self.challenge)

    def feed(self, frame: LivenessFrame) -> LivenessVerdict:
        if self._verdict is not None:
            return self._verdict
        if self.started_at is None:
            self.started_at = frame.t
        self._frames += 1
        self._last_t = frame.t
        self._count_identical(frame)
        decided = self._passive_failure() or self._advance(frame)
        if decided is None and frame.t - self.started_at > self.config.timeout_s:
            decided = self._decide("fail", self._timeout_reason())
        return decided or self._pending()

    # --- passive --------------------------------------------------------------------
    def _count_identical(self, frame: LivenessFrame) -> None:
        last = self._last_digest
        if last is not None and float(np.mean(np.abs(frame.digest - last))) < 0.3:
            self._identical += 1
        self._last_digest = frame.digest

    def _passive_failure(self) -> LivenessVerdict | None:
        if self._frames >= 6 and self._identical / (self._frames - 1) > (
            self.config.max_identical_frac
        ):
            return self._decide("fail", REASON_FROZEN)
        return None

    def _timeout_reason(self) -> str:
        if self._baseline is not None and self._texture_change < self.config.min_texture_change:
            return REASON_STATIC
        return REASON_TIMEOUT

    # --- active ---------------------------------------------------------------------
    def _advance(self, frame: LivenessFrame) -> LivenessVerdict | None:
        if frame.points is None or frame.thumb is None:
            return None  # no face or several: skipped; the time limit still runs
        if self._baseline is None:
            self._collect_baseline(frame)
            return None
        base = self._baseline
        change = float(np.mean(np.abs(frame.thumb - base.thumb)))
        self._texture_change = max(self._texture_change, change)
        move = self._classify(frame.points, base)
        steady, self._last_points = self._steady(frame.points), frame.points
        if move in ("neutral", "unclear") and frame.eyes is not None:
            # A blink is only asked for, never a wrong move: everyone blinks while turning.
            closed = self._closed(frame.eyes)
            if not closed and move == "neutral":
                self._open_eyes.append(frame.eyes)
            if closed and steady and not self._away and self._moves[self._step] == "blink":
                move = "blink"
        if self._away:
            if move == "neutral":
                self._away = False
            return None
        if move == "neutral" or move == "unclear":
            return None
        expected = self._moves[self._step]
        if move != expected:
            return self._decide("fail", f"动作与提示不符：应为{PROMPTS[expected]}")
        self._step += 1
        if self._step == len(self._moves):
            # The last move done: no need to wait for the head to come back (a slow or
            # starved sampler missed that return and timed genuine applicants out).
            return self._finish()
        self._away = True  # the next move counts once the head is back to neutral
        return None

    def _collect_baseline(self, frame: LivenessFrame) -> None:
        assert frame.points is not None and frame.thumb is not None
        yaw = frame.points.pose()[0]
        if abs(yaw) > _NEUTRAL_YAW:
            return
        self._neutral.append(frame)
        if len(self._neutral) < self.config.baseline_frames:
            return
        poses = [f.points.pose() for f in self._neutral if f.points is not None]
        thumbs = [f.thumb for f in self._neutral if f.thumb is not None]
        self._open_eyes.extend(f.eyes for f in self._neutral if f.eyes is not None)
        self._baseline = _Baseline(
            statistics.median(p[0] for p in poses),
            statistics.median(p[1] for p in poses),
            statistics.median(f.points.eye_distance for f in self._neutral if f.points),
            np.median(np.stack(thumbs), axis=0).astype(np.float32),
        )
        self._replace_blink_if_eyes_unseen()

    def _replace_blink_if_eyes_unseen(self) -> None:
        """Eyes that show no white (heavy lids, glare on glasses, a small face) cannot fall
        below their own openness: asking them to blink would only time out, so a head move
        not yet in the challenge is asked instead (still unknown before it is shown)."""
        if "blink" not in self._moves:
            return
        reference = statistics.median(self._open_eyes) if self._open_eyes else 0.0
        if reference >= self.config.blink_min_openness:
            return
        spare = itertools.cycle([m for m in HEAD_MOVES if m not in self._moves] or HEAD_MOVES)
        self._moves = [next(spare) if m == "blink" else m for m in self._moves]

    def _closed(self, eyes: float) -> bool:
        """Well below the person's own recent openness (a fixed level would not fit all)."""
        if not self._open_eyes:
            return False
        reference = statistics.median(self._open_eyes)
        cfg = self.config
        return reference >= cfg.blink_min_openness and eyes < cfg.blink_ratio * reference

    def _steady(self, points: FivePoints) -> bool:
        """The eyes barely moved since the last frame: sideways motion blur also hides the
        iris's edges, so a picture swept past the camera must not read as a blink."""
        last = self._last_points
        if last is None:
            return False
        moved = np.linalg.norm(np.mean([*points.eye_a, *points.eye_b], axis=0)
                               - np.mean([*last.eye_a, *last.eye_b], axis=0))
        return float(moved) < self.config.blink_max_shift * points.eye_distance

    def _classify(self, points: FivePoints, base: _Baseline) -> str:
        """left / right / nod / neutral / unclear, relative to the baseline pose."""
        yaw, pitch, _ = points.pose()
        dyaw = yaw - base.yaw
        # The nose's drop in units of the neutral eye distance: a turn, which shrinks the eye
        # distance, or a flat picture turned about its vertical axis, does not look like a nod.
        drop = pitch * points.eye_distance / base.eye_distance
        dpitch = (drop - base.pitch) / max(base.pitch, 0.1)
        cfg = self.config
        if dyaw >= cfg.turn_ratio:
            return "left"
        if dyaw <= -cfg.turn_ratio:
            return "right"
        # A flat picture turned about its vertical axis also stretches the pitch ratio, but
        # shrinks the eye distance; a real nod keeps it.
        eyes_kept = abs(points.eye_distance / base.eye_distance - 1) < cfg.nod_max_eye_change
        if dpitch >= cfg.nod_ratio and abs(dyaw) < cfg.turn_ratio / 2 and eyes_kept:
            return "nod"
        if abs(dyaw) < cfg.return_ratio and abs(dpitch) < cfg.return_ratio:
            return "neutral"
        return "unclear"

    def _finish(self) -> LivenessVerdict:
        if self._texture_change < self.config.min_texture_change:
            return self._decide("fail", REASON_STATIC)
        return self._decide("pass", REASON_PASS)

    # --- verdicts -------------------------------------------------------------------
    def _elapsed(self) -> float:
        return 0.0 if self.started_at is None else self._last_t - self.started_at

    def _decide(self, status: LivenessStatus, reason: str) -> LivenessVerdict:
        done = list(self._moves[: self._step])
        self._verdict = LivenessVerdict(status, reason, done, "", self._frames, self._elapsed())
        return self._verdict

    def _pending(self) -> LivenessVerdict:
        if self._baseline is None:
            prompt = "请正对摄像头"
        elif self._away:
            prompt = "请回正"
        else:
            prompt = PROMPTS[self._moves[self._step]]
        done = list(self._moves[: self._step])
        return LivenessVerdict("pending", "", done, prompt, self._frames, self._elapsed())

    def finish(self) -> LivenessVerdict:
        """The verdict when the stream ends before a decision (e.g. a video file ran out)."""
        if self._verdict is not None:
            return self._verdict
        return self._decide("fail", self._timeout_reason())

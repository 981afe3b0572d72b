"""What a terminal shows an identity check: a card on the document camera and a face that
follows (or does not follow) the challenge; a listener for what the worker tells the call.

Used by the media tests and `bench/identity_live.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from aiortc import MediaStreamTrack
from av import VideoFrame

from core import keys
from core.fanout import parse
from testkit.synth_id import (
    RGB,
    CameraEffect,
    CardFields,
    close_eyes,
    live_frame,
    load_head,
    photograph_card,
    render_card,
    two_faces_frame,
)
from verify.idnumber import with_check_digit

VIDEO_CLOCK = 90000
POSES = {"left": (0.5, 0.0), "right": (-0.5, 0.0), "nod": (0.0, 0.4)}
CARD_EFFECT = CameraEffect("call", 560, 0.03, 0.5, 0.15, 80, (1280, 720))
CARD_NUMBER = with_check_digit("11010519800101001")


def card_frame(head: RGB, seed: int = 1) -> RGB:
    return photograph_card(render_card(head, CardFields(number=CARD_NUMBER)), CARD_EFFECT, seed)


def desk_frame() -> RGB:
    """The document camera before the card is put down: an empty desk."""
    out = np.empty((720, 1280, 3), np.uint8)
    out[:] = (95, 85, 75)
    return out


class ScriptedTrack(MediaStreamTrack):
    """Video paced at `fps` showing `frames` in turn, replaced at will (`show`)."""

    kind = "video"

    def __init__(self, frames: list[RGB], fps: int = 25) -> None:
        super().__init__()
        self.fps = fps
        self._queue: list[VideoFrame] = []
        self._idle = [VideoFrame.from_ndarray(f, format="rgb24") for f in frames]
        self._start: float | None = None
        self._count = 0

    def show(self, frames: list[RGB]) -> None:
        self._idle = [VideoFrame.from_ndarray(f, format="rgb24") for f in frames]

    def stop(self) -> None:
        """Back to the idle loop now."""
        self._queue = []

    def play(self, frames: list[RGB], hold: int) -> None:
        """Play these once (each `hold` frames), then go back to the idle loop."""
        self._queue = [VideoFrame.from_ndarray(f, format="rgb24") for f in frames
                       for _ in range(hold)]

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.time()
        target = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, target - time.time()))
        source = self._queue.pop(0) if self._queue else self._idle[self._count % len(self._idle)]
        frame = VideoFrame.from_ndarray(source.to_ndarray(format="rgb24"), format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


@dataclass
class Face:
    """A synthetic applicant: neutral frames and, per move, the way out and back."""

    neutral: list[RGB]
    moves: dict[str, list[RGB]]

    @classmethod
    def of(cls, head: RGB) -> Face:
        # A person is never perfectly still: a little sway and a flicker of the light, so
        # consecutive frames differ as a camera's do.
        def sway(i: int) -> dict[str, Any]:
            return {"shift": (0.012 * np.sin(i * 1.7), 0.006 * np.cos(i * 1.3)),
                    "light": 1.0 + 0.02 * np.sin(i * 2.3), "seed": i}

        neutral = [live_frame(head, **sway(i)) for i in range(10)]
        moves = {}
        for name, (yaw, pitch) in POSES.items():
            steps = [k / 5 for k in (1, 2, 3, 4, 5, 5, 4, 3, 2, 1)]
            moves[name] = [live_frame(head, yaw=yaw * k, pitch=pitch * k, **sway(20 + i))
                           for i, k in enumerate(steps)] + neutral[:3]
        # 眨眨眼: the eyes shut for three frames (about 0.36 s as played), twice.
        shut = close_eyes(head)
        blink = [live_frame(shut, **sway(40 + i)) for i in range(3)]
        moves["blink"] = neutral[:2] + blink + neutral[2:5] + blink + neutral[5:8]
        return cls(neutral, moves)


def still_frames(head: RGB) -> list[RGB]:
    """A printed photo held up: the same picture shifted a little, with sensor noise."""
    return [live_frame(head, shift=(0.02 * np.sin(i), 0.01 * (i % 3)), noise=3.0, seed=i)
            for i in range(8)]


def two_faces(head_a: RGB, head_b: RGB) -> list[RGB]:
    return [two_faces_frame(head_a, head_b)]


def heads(faces_dir: Path, *names: str) -> dict[str, RGB]:
    return {n: load_head(faces_dir / n) for n in names}


@dataclass
class Notices:
    """Every identity message the worker published, by target; follows challenges if asked."""

    redis: aioredis.Redis
    follow: tuple[ScriptedTrack, Face] | None = None
    seen: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _played: set[tuple[str, int]] = field(default_factory=set)
    # the move asked last and when it was played: a loaded machine may sample past it, so
    # it is played again while the check still asks for it (a person would repeat it too)
    _asked: tuple[str, int, float] | None = None  # move, moves done when asked, played at

    async def __aenter__(self) -> Notices:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(keys.events_channel())
        self._task = asyncio.create_task(self._listen(pubsub))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                self._repeat()
                if msg is None:
                    continue
                _, target, text = parse(msg["data"])
                body = json.loads(text)
                if str(body.get("type", "")).startswith("identity_"):
                    self.seen.append((target, body, time.monotonic()))
                    self._react(target, body)
        finally:
            with contextlib.suppress(TimeoutError):  # never hang the test on a closing client
                await asyncio.wait_for(pubsub.aclose(), 5)

    def _react(self, target: str, body: dict[str, Any]) -> None:
        if self.follow is None or not target.startswith("terminal:"):
            return
        move = body.get("move")
        done = int(body.get("completed", 0))
        key = (str(body.get("verification_id")), done)
        if body["type"] != "identity_step":
            self._asked = None  # the attempt is over: nothing to repeat
            return
        if self._asked is not None and done > self._asked[1]:
            # The move counted: a repeat still playing would be taken for the next move.
            self.follow[0].stop()
            self._asked = None
        if move and key not in self._played:
            self._played.add(key)
            self._play(str(move), done)

    def _play(self, move: str, done: int) -> None:
        assert self.follow is not None
        track, face = self.follow
        track.play(face.moves[move], hold=3)
        self._asked = (move, done, time.monotonic())

    def _repeat(self, after_s: float = 4.0) -> None:
        if self._asked is not None and time.monotonic() - self._asked[2] > after_s:
            self._play(self._asked[0], self._asked[1])

    def of(self, kind: str, target_prefix: str = "") -> list[dict[str, Any]]:
        return [b for t, b, _ in self.seen if b["type"] == kind and t.startswith(target_prefix)]

    def result(self) -> dict[str, Any] | None:
        found = self.of("identity_result", "clerk:")
        return found[-1] if found else None

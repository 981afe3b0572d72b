"""Passing encoded frames through: key frames, a slow consumer's resync, timestamps."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np

from media.passthrough import (
    PLI_MIN_INTERVAL_S,
    PLI_PATIENCE_S,
    EncodedSubscriber,
    TimestampBridge,
    is_keyframe,
    may_ask_keyframe,
)


def _encode(codec_name: str, frames: int) -> list[bytes]:
    codec: Any = av.CodecContext.create(codec_name, "w")
    codec.width, codec.height, codec.pix_fmt = 160, 120, "yuv420p"
    codec.time_base = Fraction(1, 30)
    codec.gop_size = 1000
    if codec_name == "libx264":
        codec.options = {"preset": "ultrafast", "tune": "zerolatency"}
    out = []
    for n in range(frames):
        picture = np.full((180, 160), 60 + n * 10, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = n
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


def test_key_frames_are_told_from_the_frames_that_depend_on_them() -> None:
    for codec, mime in (("libvpx", "video/vp8"), ("libx264", "video/h264")):
        first, second, third = _encode(codec, 3)
        assert is_keyframe(mime, first), codec
        assert not is_keyframe(mime, second) and not is_keyframe(mime, third), codec
    assert not is_keyframe("video/vp8", b"")
    assert is_keyframe("audio/opus", b"\x01")


class _Feed:
    def __init__(self) -> None:
        self.kind = "video"
        self.codec: str | None = "video/vp8"
        self.keyframes_asked = 0
        self.gone: list[EncodedSubscriber] = []

    def request_keyframe(self) -> None:
        self.keyframes_asked += 1

    def unsubscribe(self, subscriber: EncodedSubscriber) -> None:
        self.gone.append(subscriber)


KEY, DELTA = b"\x00key", b"\x01delta"  # VP8 frame tags: bit 0 clear on a key frame


def test_a_consumer_starts_at_a_key_frame_and_a_slow_one_skips_to_the_next() -> None:
    feed = _Feed()
    sub = EncodedSubscriber(feed)
    sub.offer("video/vp8", DELTA, 0)  # joined mid-picture: cannot be decoded yet
    sub.offer("video/vp8", KEY, 3000)
    sub.offer("video/vp8", DELTA, 6000)
    assert sub.skipped == 1
    assert [sub._queue.get_nowait() for _ in range(2)] == [(KEY, 3000), (DELTA, 6000)]

    # The sender stops reading: the backlog is bounded, then the consumer waits for a key.
    for n in range(40):
        sub.offer("video/vp8", DELTA, 9000 + n * 3000)
    assert sub._queue.qsize() < 15
    assert feed.keyframes_asked == 1
    waiting = sub._queue.qsize()
    sub.offer("video/vp8", DELTA, 999_000)
    assert sub._queue.qsize() == waiting  # no frame the decoder could not use
    sub.offer("video/vp8", KEY, 1_002_000)
    assert sub._queue.qsize() == waiting + 1

    # Another codec's frames (a source that changed) are not passed on.
    sub.offer("video/h264", KEY, 1_005_000)
    assert sub._queue.qsize() == waiting + 1
    sub.close()
    assert feed.gone == [sub]


def test_timestamps_go_on_when_the_source_is_replaced() -> None:
    bridge = TimestampBridge(90000, 3000)
    assert [bridge.map(t) for t in (0, 3000, 6000)] == [0, 3000, 6000]
    bridge.restart()  # a rejoined sender starts its clock again
    assert [bridge.map(t) for t in (500, 3500)] == [9000, 12000]


def test_a_key_frame_is_asked_for_again_only_after_patience_unless_one_came() -> None:
    assert may_ask_keyframe(10.0, None, False)
    assert not may_ask_keyframe(10.5, 10.0, False)  # the one asked for is still coming
    assert may_ask_keyframe(10.0 + PLI_PATIENCE_S, 10.0, False)
    assert not may_ask_keyframe(10.1, 10.0, True)  # one came: a short pause still applies
    assert may_ask_keyframe(10.0 + PLI_MIN_INTERVAL_S, 10.0, True)

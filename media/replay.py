"""A replay rendered for one viewer: the recording's segments, from a given moment, decoded,
marked with the viewer's name (`media.viewer_mark`), encoded again as fragmented MP4.

The original segments never leave the server. The output starts at the key frame at or
before the asked moment; its timestamps start at 0, and the caller says where that is in
the recording (the page offsets its media buffer by it). Audio packets are copied as they
are. Thread side only: every method runs in the replay pool, one step at a time.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av import VideoFrame

from media.viewer_mark import ViewerMark, burn

log = logging.getLogger(__name__)

MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
# What the page tells its MediaSource: H.264 constrained baseline 3.1 (x264 ultrafast,
# baseline profile) and AAC-LC. tests/media/test_replay.py reads it back from the stream.
CODECS = 'video/mp4; codecs="avc1.42C01F, mp4a.40.2"'


@dataclass(frozen=True)
class SourceSegment:
    seq: int
    path: Path
    offset_s: float  # where it starts in the recording
    duration_s: float


def locate(segments: list[SourceSegment], at_s: float) -> int:
    """The index of the segment holding `at_s` (clamped to the recording)."""
    starts = [s.offset_s for s in segments]
    return max(0, min(len(segments) - 1, bisect.bisect_right(starts, at_s) - 1))


def warm_up() -> None:
    """Load the mark's fonts and open the encoder once, in a replay thread, at start."""
    picture = np.zeros((540 * 3 // 2, 960), dtype=np.uint8)
    burn(picture, 960, 540, ViewerMark("预热", "warm"), 0.0)
    sink = _Sink()
    with av.open(sink, "w", format="mp4", options=MP4_OPTIONS) as out:
        video = out.add_stream("libx264", rate=15)
        video.width, video.height, video.pix_fmt = 960, 540, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
        frame = VideoFrame.from_ndarray(picture, format="yuv420p")
        for packet in [*video.encode(frame), *video.encode(None)]:
            out.mux(packet)


class _Sink:
    """A write-only file for the muxer; the caller takes what was written so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class ReplayRender:
    def __init__(self, segments: list[SourceSegment], start_s: float, mark: ViewerMark,
                 fps: int, clock: Callable[[], float] = time.time) -> None:
        if not segments:
            raise ValueError("a replay needs at least one segment")
        self._segments = segments
        self._asked = max(0.0, start_s)
        self._mark = mark
        self._fps = fps
        self._clock = clock
        self._sink = _Sink()
        self._index = locate(segments, self._asked)
        self._src: Any = None
        self._packets: Iterator[Any] = iter(())
        self._out: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._waiting_audio: list[Any] = []
        self._last_pts = -1
        self._last_audio_s = -1.0
        self.start_s = 0.0  # the recording time of the first frame out (set by `open`)
        self.reached_s = 0.0  # the recording time of the last frame out
        self.frames = 0
        self.done = False
        # PyAV containers are not thread-safe: a viewer who leaves mid-step has its close
        # run in another pool thread, which must wait for the step (else a crash).
        self._lock = threading.RLock()

    # --- sources ------------------------------------------------------------------------

    def _open_source(self, seek_to: float | None) -> bool:
        """Open the current segment (seeking inside it if asked); False past the end."""
        if self._src is not None:
            self._src.close()
            self._src = None
        if self._index >= len(self._segments):
            return False
        seg = self._segments[self._index]
        self._src = av.open(str(seg.path))
        video = self._src.streams.video[0]
        video.thread_type = "SLICE"
        video.codec_context.thread_count = 1  # many viewers share the cores: no threads each
        streams = [video, *self._src.streams.audio[:1]]
        if seek_to is not None and seek_to > seg.offset_s:
            local = seek_to - seg.offset_s
            self._src.seek(int(local / video.time_base), stream=video, backward=True)
        self._packets = iter(self._src.demux(*streams))
        return True

    def _next_packet(self) -> tuple[Any, float] | None:
        """(packet, the segment's offset) across segments; None at the end."""
        while True:
            packet = next(self._packets, None)
            if packet is not None:
                return packet, self._segments[self._index].offset_s
            self._index += 1
            if not self._open_source(None):
                return None

    # --- output -------------------------------------------------------------------------

    def _open_output(self, first: VideoFrame) -> None:
        self._out = av.open(self._sink, "w", format="mp4", options=MP4_OPTIONS)
        video = self._out.add_stream("libx264", rate=self._fps)
        video.width, video.height, video.pix_fmt = first.width, first.height, "yuv420p"
        video.time_base = Fraction(1, self._fps)
        video.codec_context.gop_size = self._fps  # a fragment a second: seeking is cheap
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                         "threads": "1", "keyint_min": str(self._fps)}
        self._video = video
        audio = self._src.streams.audio[:1]
        if audio:
            self._audio = self._out.add_stream_from_template(audio[0])

    def open(self) -> float:
        """Find the first frame to show; returns where it is in the recording."""
        with self._lock:
            return self._open_unlocked()

    def _open_unlocked(self) -> float:
        """Find the first frame to show; returns where it is in the recording."""
        if not self._open_source(self._asked):
            raise ValueError("nothing to replay")
        while True:
            got = self._next_packet()
            if got is None:
                raise ValueError("the recording holds no picture")
            packet, offset = got
            if packet.stream.type == "audio":
                self._waiting_audio.append((packet, offset))
                continue
            for frame in packet.decode():
                self.start_s = offset + float(frame.time or 0.0)
                self._open_output(frame)
                for held, held_offset in self._waiting_audio:
                    self._mux_audio(held, held_offset)
                self._waiting_audio.clear()
                self._write_video(frame, offset)
                return self.start_s

    def _mux_audio(self, packet: Any, offset: float) -> None:
        if self._audio is None or packet.pts is None or packet.size == 0:
            return
        tb = packet.time_base
        shift = round((offset - self.start_s) / tb)
        pts = packet.pts + shift
        dts = (packet.dts + shift) if packet.dts is not None else pts
        at = float(dts * tb)
        # Before the first picture, or overlapping the previous segment's last sound.
        if pts < 0 or at <= self._last_audio_s:
            return
        self._last_audio_s = at
        packet.pts, packet.dts = pts, dts
        packet.stream = self._audio
        packet.time_base = tb
        self._out.mux(packet)

    def _write_video(self, frame: VideoFrame, offset: float) -> None:
        at = offset + float(frame.time or 0.0)
        pts = round((at - self.start_s) * self._fps)
        if pts <= self._last_pts:
            return  # a duplicate instant (seek overlap): shown once
        picture = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
        burn(picture, frame.width, frame.height, self._mark, self._clock())
        out = VideoFrame.from_ndarray(picture, format="yuv420p")
        out.pts = pts
        out.time_base = Fraction(1, self._fps)
        for packet in self._video.encode(out):
            self._out.mux(packet)
        self._last_pts = pts
        self.reached_s = at
        self.frames += 1

    # --- steps --------------------------------------------------------------------------

    def step(self, chunk_s: float) -> bytes:
        """Render about `chunk_s` more of the recording; the bytes the muxer wrote."""
        with self._lock:
            return self._step_unlocked(chunk_s)

    def _step_unlocked(self, chunk_s: float) -> bytes:
        """Render about `chunk_s` more of the recording; the bytes the muxer wrote."""
        if self.done:
            return b""
        target = self.reached_s + chunk_s
        while self.reached_s < target:
            got = self._next_packet()
            if got is None:
                self._finish()
                break
            packet, offset = got
            if packet.stream.type == "audio":
                self._mux_audio(packet, offset)
                continue
            for frame in packet.decode():
                self._write_video(frame, offset)
        return self._sink.take()

    def _finish(self) -> None:
        for packet in self._video.encode(None):
            self._out.mux(packet)
        self._out.close()
        self._out = None
        self.done = True

    def close(self) -> None:
        """Release the files (the viewer left, or the replay ended)."""
        with self._lock:
            self._close_unlocked()

    def _close_unlocked(self) -> None:
        """Release the files (the viewer left, or the replay ended)."""
        if self._src is not None:
            self._src.close()
            self._src = None
        if self._out is not None:
            try:
                self._out.close()
            except (av.FFmpegError, ValueError, OSError) as exc:  # nobody reads it any more
                log.info("replay output closed early", extra={"error": repr(exc)})
            self._out = None

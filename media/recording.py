"""Recording of one call: a 15 fps composite with mixed audio in fragmented MP4 segments.

The event loop only keeps the latest decoded frame of each camera and a bounded buffer of
each microphone; a wall-clock tick hands one picture and its audio to a single encoder
thread (PyAV, H.264 ultrafast + AAC). If that thread falls behind, ticks are dropped and
counted, never queued. Each segment is a fragmented MP4 (a keyframe, hence a fragment,
every `fragment_s`), so a crash loses at most the open fragment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from av.video.reformatter import VideoReformatter

from core.evidence import GENESIS, chain_hash, file_sha256
from media.composite import (
    CLERK_BOX,
    DOCUMENT_BOX,
    FACE_BOX,
    HEIGHT,
    I420,
    WIDTH,
    Watermark,
    compose,
    gap_tile,
    watermark_i420,
)
from media.frames import pixels
from media.slots import Slot

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
STALE_S = 1.0  # a camera silent this long is shown as a gap in the recording
AUDIO_MAX_BACKLOG_S = 0.3  # older microphone audio is dropped: bounded latency and memory
def verify_chain(rows: list[tuple[str, str, str]]) -> bool:
    """rows: (sha256, prev_hash, chain_hash) in segment order."""
    prev = GENESIS
    for sha, prev_hash, chained in rows:
        if prev_hash != prev or chain_hash(prev, sha) != chained:
            return False
        prev = chained
    return True


@dataclass(frozen=True)
class ClosedSegment:
    seq: int
    path: Path
    started_at: float  # UTC epoch seconds of its first frame
    duration_s: float
    size_bytes: int
    sha256: str


@dataclass
class RecordingStats:
    frames_written: int = 0
    frames_dropped: int = 0
    segments: int = 0
    gap_frames: int = 0  # frames drawn with a "画面中断" tile: a camera stopped sending


class SegmentWriter:
    """Thread side: owns the PyAV containers; every method runs in the encoder thread."""

    def __init__(self, folder: Path, fps: int, segment_s: float, fragment_s: float,
                 first_seq: int = 0) -> None:
        self.folder = folder
        self.fps = fps
        self.segment_frames = max(1, round(segment_s * fps))
        self.gop = max(1, round(fragment_s * fps))
        self.seq = first_seq - 1  # a recording taken over from a dead worker goes on
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._first_index = 0
        self._last_index = 0
        self._started_at = 0.0
        self._audio_pts = 0

    def _open(self, index: int, wall: float) -> None:
        self.seq += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.seq:04d}.mp4"
        self._container = av.open(
            str(path), "w", format="mp4",
            # Each fragment reaches the disk when it is complete, not when a buffer fills.
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof",
                     "flush_packets": "1"},
        )
        video = self._container.add_stream("libx264", rate=self.fps)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.time_base = Fraction(1, self.fps)
        video.codec_context.gop_size = self.gop
        video.options = {"preset": "ultrafast", "tune": "zerolatency", "keyint_min": str(self.gop)}
        audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        self._video, self._audio = video, audio
        self._first_index = index
        self._started_at = wall
        self._audio_pts = 0

    def write(self, index: int, wall: float, picture: I420, pcm: npt.NDArray[np.int16]) -> (
        ClosedSegment | None
    ):
        closed = None
        if self._container is not None and index - self._first_index >= self.segment_frames:
            closed = self.close()
        if self._container is None:
            self._open(index, wall)
        frame = VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = index - self._first_index
        frame.time_base = Fraction(1, self.fps)
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        if len(pcm):
            sound = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            sound.sample_rate = SAMPLE_RATE
            sound.pts = self._audio_pts
            sound.time_base = Fraction(1, SAMPLE_RATE)
            self._audio_pts += len(pcm)
            for packet in self._audio.encode(sound):
                self._container.mux(packet)
        self._last_index = index
        return closed

    def close(self) -> ClosedSegment | None:
        if self._container is None:
            return None
        for stream in (self._video, self._audio):
            for packet in stream.encode(None):
                self._container.mux(packet)
        self._container.close()
        self._container = None
        path = self.folder / f"{self.seq:04d}.mp4"
        return ClosedSegment(
            seq=self.seq,
            path=path,
            started_at=self._started_at,
            duration_s=(self._last_index - self._first_index + 1) / self.fps,
            size_bytes=path.stat().st_size,
            sha256=file_sha256(path),
        )


@dataclass
class _Mic:
    chunks: deque[npt.NDArray[np.int16]] = field(default_factory=deque)
    samples: int = 0

    def push(self, pcm: npt.NDArray[np.int16]) -> None:
        self.chunks.append(pcm)
        self.samples += len(pcm)
        while self.samples > AUDIO_MAX_BACKLOG_S * SAMPLE_RATE and self.chunks:
            self.samples -= len(self.chunks.popleft())

    def take(self, n: int) -> npt.NDArray[np.int32]:
        out = np.zeros(n, dtype=np.int32)
        filled = 0
        while filled < n and self.chunks:
            chunk = self.chunks.popleft()
            use = min(n - filled, len(chunk))
            out[filled : filled + use] = chunk[:use]
            if use < len(chunk):
                self.chunks.appendleft(chunk[use:])
            filled += use
            self.samples -= use
        return out


def _mono(frame: AudioFrame) -> npt.NDArray[np.int16]:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return np.asarray(data.mean(axis=0), dtype=np.int16)
    return np.asarray(data.reshape(-1, channels).mean(axis=1), dtype=np.int16)


OnSegment = Callable[[ClosedSegment], Awaitable[None]]

VIDEO_SLOTS = ("terminal.face", "terminal.document", "clerk.camera")
AUDIO_SLOTS = ("terminal.mic", "clerk.mic", "second_clerk.mic")


class Recorder:
    """Loop side of one call's recording."""

    def __init__(
        self, slots: dict[str, Slot], folder: Path, watermark: Watermark, *, fps: int,
        segment_s: float, fragment_s: float, on_segment: OnSegment, first_seq: int = 0,
    ) -> None:
        self._slots = slots
        self._watermark = watermark
        self._fps = fps
        self._writer = SegmentWriter(folder, fps, segment_s, fragment_s, first_seq)
        self.first_seq = first_seq  # segments an earlier worker recorded of this call
        self._on_segment = on_segment
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record")
        self._converters: dict[str, VideoReformatter] = {}  # used by the pool's one thread
        self._latest: dict[str, VideoFrame] = {}
        self._seen_at: dict[str, float] = {}  # loop time of each camera's latest frame
        self._mics: dict[str, _Mic] = {name: _Mic() for name in AUDIO_SLOTS}
        self._tasks: list[asyncio.Task[None]] = []
        self._segment_tasks: list[asyncio.Task[None]] = []
        self._pending = 0
        self._segment_lock = asyncio.Lock()
        self.stats = RecordingStats()
        self.started_at = 0.0
        self.ended_at = 0.0

    def start(self) -> None:
        self.started_at = time.time()
        for name in VIDEO_SLOTS:
            self._tasks.append(asyncio.create_task(self._read(name, self._keep_video)))
        for name in AUDIO_SLOTS:
            self._tasks.append(asyncio.create_task(self._read(name, self._keep_audio)))
        self._tasks.append(asyncio.create_task(self._tick()))

    @property
    def segments_total(self) -> int:
        """The call's segments so far, a dead worker's part included."""
        return self.first_seq + self.stats.segments

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        loop = asyncio.get_running_loop()
        closed = await loop.run_in_executor(self._pool, self._writer.close)
        self.ended_at = time.time()
        self._pool.shutdown(wait=True)
        await asyncio.sleep(0)  # let the last encode callbacks queue their segments
        await asyncio.gather(*self._segment_tasks)
        if closed is not None:
            await self._segment_done(closed)

    def _keep_video(self, name: str, frame: Any) -> None:
        self._latest[name] = frame
        self._seen_at[name] = asyncio.get_running_loop().time()

    def _keep_audio(self, name: str, frame: Any) -> None:
        self._mics[name].push(_mono(frame))

    async def _read(self, name: str, keep: Callable[[str, Any], None]) -> None:
        slot = self._slots[name]
        while True:
            proxy = await slot.subscribe()
            try:
                while True:
                    keep(name, await proxy.recv())
            except MediaStreamError:
                self._latest.pop(name, None)
            finally:
                proxy.stop()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        index = 0
        samples_done = 0
        while True:
            await asyncio.sleep(max(0.0, start + index / self._fps - loop.time()))
            elapsed = loop.time() - start
            due = int(elapsed * self._fps)
            if due > index:  # the loop itself was late: those instants are lost
                self.stats.frames_dropped += due - index
                index = due
            want = round((index + 1) * SAMPLE_RATE / self._fps) - samples_done
            samples_done += want
            mixed = sum((mic.take(want) for mic in self._mics.values()),
                        np.zeros(want, dtype=np.int32))
            pcm = np.clip(mixed, -32768, 32767).astype(np.int16)
            if self._pending >= 2:  # the encoder thread is behind: drop, don't queue
                self.stats.frames_dropped += 1
                index += 1
                continue
            now = loop.time()
            # A camera that sent before and stopped (a cut link) is marked, not frozen.
            gaps = frozenset(n for n, at in self._seen_at.items() if now - at > STALE_S)
            if gaps:
                self.stats.gap_frames += 1
            frames = {n: f for n, f in self._latest.items() if n not in gaps}
            wall = self.started_at + index / self._fps
            self._pending += 1
            future = loop.run_in_executor(self._pool, self._encode, index, wall, frames, pcm,
                                          gaps)
            future.add_done_callback(self._encoded)
            index += 1

    def _encode(self, index: int, wall: float, frames: dict[str, VideoFrame],
                pcm: npt.NDArray[np.int16], gaps: frozenset[str]) -> ClosedSegment | None:
        def scaled(name: str, box: tuple[int, int, int, int]) -> I420 | None:
            if name in gaps:
                return gap_tile(box[2], box[3])
            frame = frames.get(name)
            if frame is None:
                return None
            # One swscale pass straight to the box size, staying in the decoder's YUV, with
            # this recorder's own converter (its thread is the only one using it).
            converter = self._converters.setdefault(name, VideoReformatter())
            return pixels(frame, "yuv420p", box[2], box[3], converter)

        mark = watermark_i420(self._watermark.lines(wall))
        picture = compose(scaled("terminal.face", FACE_BOX),
                          scaled("terminal.document", DOCUMENT_BOX),
                          scaled("clerk.camera", CLERK_BOX), mark)
        return self._writer.write(index, wall, picture, pcm)

    def _encoded(self, future: asyncio.Future[ClosedSegment | None]) -> None:
        self._pending -= 1
        if future.cancelled():
            return
        if future.exception() is not None:
            log.error("recording frame failed", exc_info=future.exception())
            self.stats.frames_dropped += 1
            return
        self.stats.frames_written += 1
        closed = future.result()
        if closed is not None:
            self._segment_tasks.append(asyncio.create_task(self._segment_done(closed)))

    async def _segment_done(self, closed: ClosedSegment) -> None:
        async with self._segment_lock:
            self.stats.segments += 1
            await self._on_segment(closed)

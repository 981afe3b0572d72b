"""Real aiortc peers for the media tests and the benchmark: what they send and receive.

Senders draw something recognisable (a solid colour, a checkerboard with a sharp/blurred
tag) or play a tone; receivers keep the last frames of each track, bounded, so tests can
check content. Every peer uses an explicit RTCConfiguration and joins over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import cv2
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from media.ice import announce_host_addresses, rtc_configuration

VIDEO_CLOCK = 90000
SAMPLE_RATE = 48000
AUDIO_PTIME = 0.02

RED = (220, 30, 30)
GREEN = (30, 200, 30)
BLUE = (30, 30, 220)
TAG = 48  # the document's top-left tag: white on sharp frames, black on blurred ones


def solid(colour: tuple[int, int, int], width: int = 320, height: int = 240) -> VideoFrame:
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = colour
    return VideoFrame.from_ndarray(image, format="rgb24")


def document_images(width: int = 320, height: int = 240) -> tuple[npt.NDArray[np.uint8],
                                                                 npt.NDArray[np.uint8]]:
    """(sharp, blurred) renderings of a checkerboard page with the tag in the corner."""
    y, x = np.mgrid[0:height, 0:width]
    board = (((x // 8) + (y // 8)) % 2 * 255).astype(np.uint8)
    sharp = np.stack([board] * 3, axis=-1)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 5)
    sharp[:TAG, :TAG] = 255
    blurred[:TAG, :TAG] = 0
    return np.asarray(sharp, dtype=np.uint8), np.asarray(blurred, dtype=np.uint8)


class PictureTrack(MediaStreamTrack):
    """30 fps video cycling through the given pictures (`run` frames each)."""

    kind = "video"

    def __init__(self, pictures: list[npt.NDArray[np.uint8]], runs: list[int],
                 fps: int = 30) -> None:
        super().__init__()
        self._frames = [VideoFrame.from_ndarray(p, format="rgb24") for p in pictures]
        self._runs = runs
        self._fps = fps
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.time()
        target = self._start + self._count / self._fps
        await asyncio.sleep(max(0.0, target - time.time()))
        cycle = self._count % sum(self._runs)
        index = 0
        while cycle >= self._runs[index]:
            cycle -= self._runs[index]
            index += 1
        source = self._frames[index]
        frame = VideoFrame.from_ndarray(source.to_ndarray(format="rgb24"), format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


def colour_track(colour: tuple[int, int, int], width: int = 320, height: int = 240) -> (
    PictureTrack
):
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = colour
    return PictureTrack([image], [1])


def document_track(width: int = 320, height: int = 240) -> PictureTrack:
    sharp, blurred = document_images(width, height)
    return PictureTrack([sharp, blurred], [6, 24])  # 0.2 s sharp in every second


class ToneTrack(MediaStreamTrack):
    """A sine tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self._hz = hz
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.time()
        n = int(SAMPLE_RATE * AUDIO_PTIME)
        target = self._start + self._samples / SAMPLE_RATE
        await asyncio.sleep(max(0.0, target - time.time()))
        t = (np.arange(n) + self._samples) / SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * self._hz * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += n
        return frame


@dataclass
class Received:
    """The last frames of one incoming track (bounded) and how many arrived."""

    kind: str
    frames: deque[Any] = field(default_factory=lambda: deque(maxlen=50))
    count: int = 0
    first_at: float = 0.0
    last_at: float = 0.0

    def mean_colour(self) -> tuple[float, float, float] | None:
        if not self.frames:
            return None
        rgb = self.frames[-1].to_ndarray(format="rgb24")
        m = rgb.reshape(-1, 3).mean(axis=0)
        return float(m[0]), float(m[1]), float(m[2])

    def dominant_hz(self) -> float | None:
        if len(self.frames) < 10:
            return None
        pcm = np.concatenate([
            f.to_ndarray().reshape(-1, len(f.layout.channels))[:, 0] for f in self.frames
        ]).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
        freqs = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
        return float(freqs[int(np.argmax(spectrum[1:])) + 1])


@dataclass
class Peer:
    pc: RTCPeerConnection
    received: list[Received]
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task
        with contextlib.suppress(TimeoutError):  # a dead remote must not hang the test
            await asyncio.wait_for(self.pc.close(), 10)


async def _collect(track: MediaStreamTrack, into: Received) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            now = time.time()
            if into.count == 0:
                into.first_at = now
            into.count += 1
            into.last_at = now
            into.frames.append(frame)


Line = tuple[str, MediaStreamTrack | None, bool]  # kind, what to send, receive?


async def join(url: str, call_id: str, token: str, lines: list[Line],
               video_codec: str | None = None) -> Peer:
    """Offer the m-lines in order, POST the complete offer, apply the answer;
    `video_codec` (e.g. "video/H264") offers only that codec on the video m-lines."""
    announce_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(rtc_configuration([]))
    for kind, track, receive in lines:
        direction = ("sendrecv" if receive else "sendonly") if track else "recvonly"
        transceiver = pc.addTransceiver(track or kind, direction=direction)
        if kind == "video" and video_codec is not None:
            transceiver.setCodecPreferences([
                c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType == video_codec])
    await pc.setLocalDescription(await pc.createOffer())
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
    async with http, http.post(
        f"{url}/calls/{call_id}/join", json={"token": token, "sdp": pc.localDescription.sdp}
    ) as resp:
        body = await resp.json()
        if resp.status != 200:
            await pc.close()
            raise RuntimeError(f"join refused: {resp.status} {body}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
    received: list[Received] = []
    tasks: list[asyncio.Task[None]] = []
    for transceiver, (kind, _, receive) in zip(pc.getTransceivers(), lines, strict=True):
        got = Received(kind)
        received.append(got)
        if receive:
            tasks.append(asyncio.create_task(_collect(transceiver.receiver.track, got)))
    return Peer(pc, received, tasks)


def terminal_lines(face: MediaStreamTrack, document: MediaStreamTrack,
                   mic: MediaStreamTrack) -> list[Line]:
    return [("video", face, True), ("video", document, True), ("audio", mic, True),
            ("audio", None, True)]


def clerk_lines(camera: MediaStreamTrack, mic: MediaStreamTrack) -> list[Line]:
    return [("video", camera, True), ("video", None, True), ("video", None, True),
            ("audio", mic, True), ("audio", None, True)]


async def until(check: Any, timeout_s: float = 15.0, what: Any = "condition") -> None:
    """Poll `check()` until true; fail with `what` when it never becomes true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.05)

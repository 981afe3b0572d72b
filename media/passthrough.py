"""Forward a source's encoded frames to consumers without decoding and re-encoding them.

aiortc decodes every incoming frame (the recorder and scan capture need pictures) and
would re-encode it for every consumer; the encoder is where a relay spends its CPU. When a
consumer negotiated the source's codec, the worker hands the consumer's sender the
source's own encoded frames instead (aiortc packs `av.Packet`s as they are). A consumer's
picture-loss request becomes one to the source; a consumer that falls behind skips to
the next keyframe instead of queueing frames without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from fractions import Fraction
from typing import Any, Protocol

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from av.packet import Packet

log = logging.getLogger(__name__)

VIDEO_BACKLOG = 15  # half a second of 30 fps video waiting for the sender
AUDIO_BACKLOG = 10  # 200 ms of 20 ms audio frames
PLI_MIN_INTERVAL_S = 0.3  # a burst of losses asks the source once, not per consumer
# Once a key frame is asked for, ask again only after this unless one came: on a slow
# link a key frame takes a second or more to arrive, and asking on every undecodable frame
# (as aiortc's receiver does) makes the sender encode nothing but key frames.
PLI_PATIENCE_S = 1.5


def may_ask_keyframe(now: float, last_asked: float | None, keyframe_since: bool) -> bool:
    """Whether to send a picture-loss request now (pure)."""
    if last_asked is None:
        return True
    if keyframe_since:
        return now - last_asked >= PLI_MIN_INTERVAL_S
    return now - last_asked >= PLI_PATIENCE_S


def negotiated_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """The codec this m-line sends and receives with (aiortc uses the first common one)."""
    codecs = [c for c in getattr(transceiver, "_codecs", []) if not c.mimeType.endswith("/rtx")]
    return str(codecs[0].mimeType).lower() if codecs else None


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can start a decoder (VP8 key frame, H.264 IDR)."""
    if not data:
        return False
    if codec == "video/vp8":
        return data[0] & 0x01 == 0  # RFC 6386 frame tag: 0 marks a key frame
    if codec == "video/h264":
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F == 5:
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return True  # audio: every frame stands alone


class Feed(Protocol):
    kind: str
    codec: str | None

    def request_keyframe(self) -> None: ...

    def unsubscribe(self, subscriber: EncodedSubscriber) -> None: ...


class EncodedFeed:
    """The encoded frames of one incoming track, tapped in front of aiortc's decoder."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str, codec: str | None) -> None:
        self.kind = kind
        self.codec = codec
        self._receiver = receiver
        self._subscribers: set[EncodedSubscriber] = set()
        self._last_pli: float | None = None
        self._keyframe_since_pli = False
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self._send_pli: Callable[[int], Coroutine[Any, Any, None]] = receiver._send_rtcp_pli
        if kind == "video":
            self._throttle_receiver_pli(receiver)
        # The decoder thread reads this very queue object, so wrap its put in place.
        decoder_queue: Any = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
        if decoder_queue is None or not hasattr(decoder_queue, "put"):
            # An aiortc without this internal: every consumer gets re-encoded frames.
            log.warning("encoded pass-through unavailable with this aiortc; re-encoding")
            self.codec = None
            return
        forward_put: Callable[[Any], None] = decoder_queue.put

        def put(item: Any, *args: Any, **kwargs: Any) -> None:
            if item is None:
                self.end()  # aiortc stops the decoder: the track has ended
            else:
                self._deliver(str(item[0].mimeType).lower(), item[1])
            forward_put(item, *args, **kwargs)

        decoder_queue.put = put

    def _throttle_receiver_pli(self, receiver: RTCRtpReceiver) -> None:
        """aiortc's receiver asks for a key frame on every decoding error: pass those
        requests through the same patience as ours."""
        send_pli = self._send_pli

        async def throttled(media_ssrc: int) -> None:
            if self._may_ask(time.monotonic()):
                await send_pli(media_ssrc)

        receiver._send_rtcp_pli = throttled  # type: ignore[method-assign]

    def _may_ask(self, now: float) -> bool:
        if not may_ask_keyframe(now, self._last_pli, self._keyframe_since_pli):
            return False
        self._last_pli = now
        self._keyframe_since_pli = False
        return True

    def _deliver(self, codec: str, frame: Any) -> None:
        if self.kind == "video" and is_keyframe(codec, frame.data):
            self._keyframe_since_pli = True
        for subscriber in list(self._subscribers):
            subscriber.offer(codec, frame.data, int(frame.timestamp))

    def end(self) -> None:
        """No more frames from this source (it left or was replaced)."""
        for subscriber in list(self._subscribers):
            subscriber.end()
        self._subscribers.clear()

    def subscribe(self) -> EncodedSubscriber:
        subscriber = EncodedSubscriber(self)
        self._subscribers.add(subscriber)
        if self.kind == "video":
            self.request_keyframe()
        return subscriber

    def unsubscribe(self, subscriber: EncodedSubscriber) -> None:
        self._subscribers.discard(subscriber)

    def request_keyframe(self) -> None:
        if self.kind != "video" or not self._may_ask(time.monotonic()):
            return
        sources = self._receiver.getSynchronizationSources()
        if not sources:
            return  # nothing received yet: its first frame is a key frame anyway
        # A retransmission stream's SSRC is not the picture's: name the media SSRC.
        rtx: dict[int, int] = getattr(self._receiver, "_RTCRtpReceiver__rtx_ssrc", {})
        ssrc = rtx.get(sources[0].source, sources[0].source)
        task = asyncio.get_running_loop().create_task(self._send_pli(ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)


class EncodedSubscriber:
    """One consumer's bounded queue of encoded frames, starting at a key frame."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self._backlog = VIDEO_BACKLOG if feed.kind == "video" else AUDIO_BACKLOG
        self._queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self._need_key = feed.kind == "video"
        self.skipped = 0

    def offer(self, codec: str, data: bytes, timestamp: int) -> None:
        if codec != self.feed.codec:
            self.skipped += 1  # the source changed codec: not this consumer's any more
            return
        if self._need_key:
            if not is_keyframe(codec, data):
                self.skipped += 1
                return
            self._need_key = False
        if self._queue.qsize() >= self._backlog:
            if self.feed.kind == "video":
                # Later frames depend on the dropped ones: wait for a fresh key frame.
                self.skipped += self._queue.qsize() + 1
                while not self._queue.empty():
                    self._queue.get_nowait()
                self._need_key = True
                self.feed.request_keyframe()
                return
            self._queue.get_nowait()
            self.skipped += 1
        self._queue.put_nowait((data, timestamp))

    def end(self) -> None:
        self._queue.put_nowait(None)

    def waiting(self) -> int:
        return self._queue.qsize()

    async def get(self) -> tuple[bytes, int] | None:
        """The next frame, or None when the source has gone."""
        return await self._queue.get()

    def close(self) -> None:
        self.feed.unsubscribe(self)


class TimestampBridge:
    """Output timestamps that keep going forward when the source is replaced (a rejoin
    restarts its clock at 0), so the consumer's jitter buffer is not thrown back."""

    def __init__(self, clock_rate: int, step: int) -> None:
        self.time_base = Fraction(1, clock_rate)
        self._step = step
        self._shift: int | None = None
        self._last = -step

    def restart(self) -> None:
        self._shift = None

    def map(self, timestamp: int) -> int:
        if self._shift is None:
            self._shift = self._last + self._step - timestamp
        self._last = timestamp + self._shift
        return self._last


def packet(data: bytes, pts: int, time_base: Fraction) -> Packet[Any]:
    out = Packet(data)
    out.pts = pts
    out.time_base = time_base
    return out


def hook_picture_loss(sender: RTCRtpSender, on_loss: Callable[[], None]) -> None:
    """Also tell `on_loss` when the consumer asks this sender for a key frame (PLI/FIR)."""
    encoder_keyframe: Callable[[], None] = sender._send_keyframe

    def send_keyframe() -> None:
        encoder_keyframe()
        on_loss()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

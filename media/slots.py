"""Which track goes where: the m-line plan of each role and the slots tracks fill.

Each participant makes one complete offer (non-trickle, no renegotiation), so the offer
already carries an m-line for everything it will send and receive. The i-th video (or
audio) m-line of a role's offer maps to the i-th entry of that role's plan: what the
participant sends into a slot, and which slot the worker sends back on that m-line.
A slot is filled when its sender joins; a consumer subscribed before that simply waits.
A consumer that negotiated the source's codec gets the source's encoded frames as they
are (media.passthrough); any other gets decoded frames, which its sender re-encodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

from media.passthrough import EncodedFeed, EncodedSubscriber, TimestampBridge, packet


@dataclass(frozen=True)
class Line:
    kind: str  # "audio" | "video"
    sends: str | None  # slot the participant fills on this m-line
    receives: str | None  # slot the worker sends back on this m-line


PLANS: dict[str, tuple[Line, ...]] = {
    "terminal": (
        Line("video", "terminal.face", "clerk.camera"),
        Line("video", "terminal.document", "second_clerk.camera"),
        Line("audio", "terminal.mic", "clerk.mic"),
        Line("audio", None, "second_clerk.mic"),
    ),
    "clerk": (
        Line("video", "clerk.camera", "terminal.face"),
        Line("video", None, "terminal.document"),
        Line("video", None, "second_clerk.camera"),
        Line("audio", "clerk.mic", "terminal.mic"),
        Line("audio", None, "second_clerk.mic"),
    ),
    "second_clerk": (
        Line("video", "second_clerk.camera", "terminal.face"),
        Line("video", None, "terminal.document"),
        Line("video", None, "clerk.camera"),
        Line("audio", "second_clerk.mic", "terminal.mic"),
        Line("audio", None, "clerk.mic"),
    ),
    # 监看: receives every source, sends nothing (media.watchers).
    "watcher": (
        Line("video", None, "terminal.face"),
        Line("video", None, "terminal.document"),
        Line("video", None, "clerk.camera"),
        Line("video", None, "second_clerk.camera"),
        Line("audio", None, "terminal.mic"),
        Line("audio", None, "clerk.mic"),
        Line("audio", None, "second_clerk.mic"),
    ),
}


def plan_for(role: str, kinds: list[str]) -> list[Line | None]:
    """Match the offer's m-line kinds, in order, to the role's plan (None: not used)."""
    by_kind: dict[str, list[Line]] = {"audio": [], "video": []}
    for line in PLANS[role]:
        by_kind[line.kind].append(line)
    taken = {"audio": 0, "video": 0}
    out: list[Line | None] = []
    for kind in kinds:
        lines = by_kind.get(kind, [])
        index = taken.get(kind, 0)
        out.append(lines[index] if index < len(lines) else None)
        if kind in taken:
            taken[kind] = index + 1
    return out


class Slot:
    """One named source in a call (e.g. the terminal's document camera)."""

    def __init__(self, name: str, kind: str, relay: MediaRelay) -> None:
        self.name = name
        self.kind = kind
        self._relay = relay
        self.source: MediaStreamTrack | None = None
        self.feed: EncodedFeed | None = None
        self._changed = asyncio.Event()

    def fill(self, track: MediaStreamTrack, feed: EncodedFeed | None = None) -> None:
        if self.feed is not None and self.feed is not feed:
            self.feed.end()  # its consumers move to the new source
        self.source = track
        self.feed = feed
        self._changed.set()
        self._changed = asyncio.Event()

    async def _live(self) -> MediaStreamTrack:
        while self.source is None or self.source.readyState != "live":
            await self._changed.wait()
        return self.source

    async def subscribe(self) -> MediaStreamTrack:
        """An unbuffered relay proxy of the current source: a slow reader skips frames."""
        return self._relay.subscribe(await self._live(), buffered=False)

    async def subscribe_for(self, codec: str | None) -> MediaStreamTrack | EncodedSubscriber:
        """The source's encoded frames when `codec` is theirs, else decoded frames."""
        source = await self._live()
        if codec is not None and self.feed is not None and self.feed.codec == codec:
            return self.feed.subscribe()
        return self._relay.subscribe(source, buffered=False)


class SlotTrack(MediaStreamTrack):
    """What the worker sends on one m-line: whatever source currently fills a slot, as
    encoded frames passed through when `codec` (this m-line's) matches the source's."""

    def __init__(self, slot: Slot, codec: str | None = None) -> None:
        super().__init__()
        self.kind = slot.kind
        self._slot = slot
        self._codec = codec
        self._proxy: MediaStreamTrack | EncodedSubscriber | None = None
        self._times = (TimestampBridge(90000, 3000) if slot.kind == "video"
                       else TimestampBridge(48000, 960))
        self.passed = 0  # frames sent as the source encoded them
        self.reencoded = 0  # decoded frames the sender encodes again

    async def recv(self) -> Frame | Packet[Any]:
        while self.readyState == "live":
            if self._proxy is None:
                self._proxy = await self._slot.subscribe_for(self._codec)
                self._times.restart()
            if isinstance(self._proxy, EncodedSubscriber):
                got = await self._proxy.get()
                if got is not None:
                    self.passed += 1
                    return packet(got[0], self._times.map(got[1]), self._times.time_base)
                self._proxy.close()  # the sender left or rejoined: follow the slot
                self._proxy = None
                continue
            try:
                frame = await self._proxy.recv()
            except MediaStreamError:
                self._proxy = None  # the sender left; wait for the slot to be filled again
                continue
            self.reencoded += 1
            return frame
        raise MediaStreamError

    def backlog(self) -> tuple[int, int]:
        """(frames waiting for the sender now, frames skipped so far) when passing through."""
        if isinstance(self._proxy, EncodedSubscriber):
            return self._proxy.waiting(), self._proxy.skipped
        return 0, 0

    def picture_lost(self) -> None:
        """The consumer lost pictures: passed-through frames need the source's key frame."""
        if isinstance(self._proxy, EncodedSubscriber):
            self._proxy.feed.request_keyframe()

    def stop(self) -> None:
        super().stop()
        if isinstance(self._proxy, EncodedSubscriber):
            self._proxy.close()
        elif self._proxy is not None:
            with contextlib.suppress(Exception):
                self._proxy.stop()
        self._proxy = None


class FreshTrack(MediaStreamTrack):
    """An incoming track read freshest-first: frames decoded while the hub was busy are
    skipped (video) or capped (audio), so a loaded worker drops rather than lags."""

    AUDIO_BACKLOG = 10  # 200 ms of 20 ms frames

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Frame | Packet[Any]:
        try:
            frame = await self._source.recv()
        except MediaStreamError:
            self.stop()  # ended, so the slot waits for a new sender instead of spinning
            raise
        queue: asyncio.Queue[Any] | None = getattr(self._source, "_queue", None)
        if queue is None:
            return frame
        keep = 0 if self.kind == "video" else self.AUDIO_BACKLOG
        while queue.qsize() > keep:
            newer = queue.get_nowait()
            if newer is None:  # end of the track: hand it on next time
                queue.put_nowait(None)
                break
            frame = newer
        return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()

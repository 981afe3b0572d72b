"""Which track goes where: the m-line plan of each role and the slots tracks fill.

Each participant makes one complete offer (non-trickle, no renegotiation), so the offer
already carries an m-line for everything it will send and receive. The i-th video (or
audio) m-line of a role's offer maps to the i-th entry of that role's plan: what the
participant sends into a slot, and which slot the worker sends back on that m-line.
A slot is filled when its sender joins; a consumer subscribed before that simply waits.
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
        self._changed = asyncio.Event()

    def fill(self, track: MediaStreamTrack) -> None:
        self.source = track
        self._changed.set()
        self._changed = asyncio.Event()

    async def subscribe(self) -> MediaStreamTrack:
        """An unbuffered relay proxy of the current source: a slow reader skips frames."""
        while self.source is None or self.source.readyState != "live":
            await self._changed.wait()
        return self._relay.subscribe(self.source, buffered=False)

    async def wait_change(self) -> None:
        await self._changed.wait()


class SlotTrack(MediaStreamTrack):
    """What the worker sends on one m-line: whatever source currently fills a slot."""

    def __init__(self, slot: Slot) -> None:
        super().__init__()
        self.kind = slot.kind
        self._slot = slot
        self._proxy: MediaStreamTrack | None = None

    async def recv(self) -> Frame | Packet[Any]:
        while self.readyState == "live":
            if self._proxy is None:
                self._proxy = await self._slot.subscribe()
            try:
                return await self._proxy.recv()
            except MediaStreamError:
                self._proxy = None  # the sender left; wait for the slot to be filled again
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if self._proxy is not None:
            with contextlib.suppress(Exception):
                self._proxy.stop()
            self._proxy = None

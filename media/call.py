"""One call on a worker: its participants' peer connections, slots, keepers and recorder.

Every incoming track gets a keeper that always reads it (aiortc queues decoded frames
without bound if nobody does), counts frames for the load figures and, for the document
camera, feeds the capture buffer. Forwarding passes the encoded frames through when the
consumer's codec is the source's, else goes through MediaRelay unbuffered proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from media.capture import CaptureBuffer
from media.passthrough import EncodedFeed, hook_picture_loss, negotiated_codec
from media.recording import Recorder
from media.slots import PLANS, FreshTrack, Slot, SlotTrack, plan_for

log = logging.getLogger(__name__)

REQUIRED_ROLES = ("terminal", "clerk")  # either gone past the grace period ends the call


@dataclass
class TrackStats:
    frames: int = 0
    first_at: float = 0.0
    last_at: float = 0.0

    def fps(self) -> float:
        span = self.last_at - self.first_at
        return (self.frames - 1) / span if self.frames > 1 and span > 0 else 0.0


@dataclass
class Participant:
    participant_id: str
    role: str
    pc: RTCPeerConnection
    outputs: list[SlotTrack] = field(default_factory=list)
    gone_since: float | None = None
    token_id: str = ""  # the join token of this connection (its bearer for later requests)
    issued_at: float = 0.0


def gone_too_long(participants: dict[str, tuple[str, float | None]], now: float,
                  grace_s: float) -> str | None:
    """The id of a required participant gone longer than the grace period, if any."""
    for pid, (role, gone_since) in participants.items():
        if role in REQUIRED_ROLES and gone_since is not None and now - gone_since > grace_s:
            return pid
    return None


class Call:
    def __init__(self, call_id: str, configuration: RTCConfiguration,
                 clock: Callable[[], float] = time.time) -> None:
        self.call_id = call_id
        self.clock = clock
        self.configuration = configuration
        self.relay = MediaRelay()
        self.slots: dict[str, Slot] = {}
        for plan in PLANS.values():
            for line in plan:
                for name in (line.sends, line.receives):
                    if name is not None and name not in self.slots:
                        self.slots[name] = Slot(name, line.kind, self.relay)
        self.participants: dict[str, Participant] = {}
        self.capture = CaptureBuffer()
        self.stats: dict[str, TrackStats] = {name: TrackStats() for name in self.slots}
        self.recorder: Recorder | None = None
        # Set while an identity check samples the face camera (media.identity), else None.
        self.face_hook: Callable[[float, VideoFrame], None] | None = None
        self.created_at = clock()
        self._keepers: set[asyncio.Task[None]] = set()
        self.closed = False

    async def join(self, participant_id: str, role: str, offer_sdp: str, token_id: str = "",
                   issued_at: float = 0.0) -> str:
        """Answer one participant's complete offer; a rejoin replaces the old connection."""
        old = self.participants.pop(participant_id, None)
        if old is not None:
            await self._close_participant(old)
        pc = RTCPeerConnection(self.configuration)
        member = Participant(participant_id, role, pc, token_id=token_id, issued_at=issued_at)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            transceivers = pc.getTransceivers()
            if not transceivers:
                raise ValueError("the offer has no audio or video")
            for transceiver, line in zip(
                transceivers, plan_for(role, [t.kind for t in transceivers]), strict=True
            ):
                if line is None:
                    transceiver.direction = "inactive"
                    continue
                incoming = transceiver.receiver.track if line.sends else None
                codec = negotiated_codec(transceiver)
                if line.receives is not None:
                    output = SlotTrack(self.slots[line.receives], codec)
                    member.outputs.append(output)
                    transceiver.sender.replaceTrack(output)
                    hook_picture_loss(transceiver.sender, output.picture_lost)
                    transceiver.direction = "sendrecv" if incoming else "sendonly"
                else:
                    transceiver.direction = "recvonly" if incoming else "inactive"
                if incoming is not None and line.sends is not None:
                    feed = EncodedFeed(transceiver.receiver, line.kind, codec)
                    self._attach(line.sends, FreshTrack(incoming), feed)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            await self._close_participant(member)
            raise
        self._watch(member)
        self.participants[participant_id] = member
        return str(pc.localDescription.sdp)

    def _attach(self, name: str, track: MediaStreamTrack, feed: EncodedFeed) -> None:
        self.slots[name].fill(track, feed)
        task = asyncio.create_task(self._keep(name, track))
        self._keepers.add(task)
        task.add_done_callback(self._keepers.discard)

    async def _keep(self, name: str, track: MediaStreamTrack) -> None:
        proxy = self.relay.subscribe(track, buffered=False)
        stats = self.stats[name]
        try:
            while True:
                frame = await proxy.recv()
                now = self.clock()
                if stats.frames == 0:
                    stats.first_at = now
                stats.frames += 1
                stats.last_at = now
                if name == "terminal.document" and isinstance(frame, VideoFrame):
                    self.capture.push(now, frame)
                elif name == "terminal.face" and self.face_hook is not None \
                        and isinstance(frame, VideoFrame):
                    self.face_hook(now, frame)
        except MediaStreamError:
            pass
        finally:
            proxy.stop()

    def forwarding(self) -> dict[str, int]:
        """Frames sent on as encoded by their source versus decoded and encoded again."""
        outputs = [o for p in self.participants.values() for o in p.outputs]
        backlogs = [o.backlog() for o in outputs]
        return {"passed": sum(o.passed for o in outputs),
                "reencoded": sum(o.reencoded for o in outputs),
                "waiting_max": max((b[0] for b in backlogs), default=0),
                "skipped": sum(b[1] for b in backlogs)}

    def _watch(self, member: Participant) -> None:
        @member.pc.on("connectionstatechange")
        def on_state() -> None:
            state = member.pc.connectionState
            if state in ("failed", "closed", "disconnected"):
                if member.gone_since is None:
                    member.gone_since = self.clock()
            elif state == "connected":
                member.gone_since = None

    async def remove(self, participant_id: str) -> None:
        member = self.participants.pop(participant_id, None)
        if member is not None:
            await self._close_participant(member)

    def gone_participant(self, now: float, grace_s: float) -> str | None:
        return gone_too_long(
            {p.participant_id: (p.role, p.gone_since) for p in self.participants.values()},
            now, grace_s,
        )

    async def _close_participant(self, member: Participant) -> None:
        for output in member.outputs:
            output.stop()
        await member.pc.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.recorder is not None:
            try:
                await self.recorder.stop()
            except Exception:
                log.exception("finalizing the recording of %s failed", self.call_id)
        for member in list(self.participants.values()):
            await self._close_participant(member)
        self.participants.clear()
        for task in list(self._keepers):
            task.cancel()
        for task in list(self._keepers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

"""The calls a worker hosts: create on first join, capture scans, end, and report load.

Call details for the watermark come from the call's media hash in Redis, written by
signaling when it placed the call here. A call the worker ends on its own (a participant
gone past the grace period, a hang-up from the terminal) is pushed to the `media_ended`
list so exactly one signaling node tells everyone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core import worker_registry as registry
from core.call_events import CallEventKind, note
from core.evidence import GENESIS, chain_hash
from core.loops import Background
from core.media_tables import media_calls, recording_segments, scans
from core.messages import IceServer
from core.records import database_away
from core.settings import Settings
from core.states import CallState
from core.worker_registry import WorkerInfo, load_figure
from media.call import Call
from media.capture import pick_sharpest
from media.composite import Watermark
from media.ice import rtc_configuration
from media.identity import IdentityChecks
from media.recording import ClosedSegment, Recorder
from media.recording_resume import resume
from media.recording_seal import seal_recording
from media.verification_pool import VerificationPool
from media.watchers import WATCHER, Watching

log = logging.getLogger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEGMENT_RETRY_S, SEGMENT_RETRIES = 1.0, 600  # a PostgreSQL outage of up to 10 minutes


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


Clock = Callable[[], float]
# A call action signaling forwards for a participant: (call, body, actor) → the answer.
Action = Callable[[Call, dict[str, Any], str], Awaitable[dict[str, Any]]]


class Hub:
    def __init__(self, settings: Settings, redis: aioredis.Redis, engine: AsyncEngine,
                 clock: Clock = time.time) -> None:
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.clock = clock
        self.calls: dict[str, Call] = {}
        self._creating: dict[str, asyncio.Lock] = {}
        self._chain: dict[str, str] = {}
        self._process = psutil.Process(os.getpid())
        self.pool: VerificationPool | None = (
            VerificationPool(settings.media_verify_processes, settings.media_verify_queue,
                             settings.media_verify_cpus)
            if settings.media_verify_processes > 0 else None)
        self._cpu_mark = (time.monotonic(), self._cpu_seconds())
        self.cpu_fraction = 0.0
        self.ice_servers: list[IceServer] = [IceServer(urls=[u]) for u in settings.media_stun_urls]
        self.actions: dict[str, Action] = {}  # by name; features register theirs
        self._notes: set[asyncio.Task[None]] = set()
        self._captures: dict[str, int] = {}  # scans taken per call (bounded)
        self.watching = Watching(redis, engine)  # 监看 (media.watchers)
        self.identity = IdentityChecks(self)
        self.identity.install()

    async def act(self, call_id: str, action: str, body: dict[str, Any],
                  actor: str) -> dict[str, Any]:
        """Carry out a call action signaling forwarded (an identity check, a capture...)."""
        handler = self.actions.get(action)
        if handler is None:
            raise HubError(404, "unknown_action", "不支持的操作")
        call = self.calls.get(call_id)
        if call is None:
            raise HubError(404, "no_call", "通话不存在或已结束")
        return await handler(call, body, actor)

    # --- calls ------------------------------------------------------------------------

    async def refuse_ended(self, call_id: str) -> None:
        """Before a join token is spent: a bad id or an ended call is refused as such."""
        if not SAFE_ID.match(call_id):
            raise HubError(400, "bad_call_id", "通话编号无效")
        if call_id not in self.calls:
            placed = await registry.placed_call(self.redis, call_id)
            if placed is not None and placed.state in (CallState.ENDED, CallState.FAILED):
                raise HubError(410, "call_ended", "通话已结束")

    def current_token(self, call_id: str, participant_id: str) -> str | None:
        """The join token id of the participant's live connection, if any."""
        call = self.calls.get(call_id)
        member = call.participants.get(participant_id) if call is not None else None
        return member.token_id if member is not None else None

    async def join(self, call_id: str, participant_id: str, role: str, sdp: str,
                   token_id: str = "", issued_at: float = 0.0) -> str:
        if role == WATCHER and call_id not in self.calls:  # a watcher never starts a call
            raise HubError(409, "call_not_live", "通话尚未开始或已经结束")
        call = await self._call_for(call_id)
        old = call.participants.get(participant_id)
        if old is not None and issued_at < old.issued_at:
            # Only a newer token of the same participant (a reconnect) replaces a connection.
            raise HubError(409, "stale_token", "这个入会凭证已被更新的连接取代，请刷新页面")
        try:
            answer = await call.join(participant_id, role, sdp, token_id, issued_at)
        except (ValueError, KeyError, IndexError) as exc:  # aiortc's complaints about the SDP
            raise HubError(400, "bad_offer", "SDP offer 无法使用") from exc
        if role == WATCHER:  # not a participant of the call's record
            await self.watching.joined(call, participant_id, await self.watching.who(
                call_id, participant_id, self.clock()))
            return answer
        self._note(call_id, CallEventKind.JOINED, role, {"participant": participant_id})
        if self.watching.watching(call_id):
            await self.watching.tell(call)  # a clerk (re)joining learns who watches
        return answer

    def _note(self, call_id: str, kind: CallEventKind, actor: str,
              detail: dict[str, Any]) -> None:
        """The replay's timeline, written beside the call (never in its way)."""
        task = asyncio.create_task(note(self.engine, call_id, kind, _utc(self.clock()), actor,
                                        detail))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _call_for(self, call_id: str) -> Call:
        if not SAFE_ID.match(call_id):
            raise HubError(400, "bad_call_id", "通话编号无效")
        lock = self._creating.setdefault(call_id, asyncio.Lock())
        async with lock:
            call = self.calls.get(call_id)
            if call is not None:
                return call
            placed = await registry.placed_call(self.redis, call_id)
            if placed is not None and placed.state in (CallState.ENDED, CallState.FAILED):
                raise HubError(410, "call_ended", "通话已结束")
            call = Call(call_id, rtc_configuration(self.ice_servers), self.clock)
            if self.settings.media_record:
                # A call taken over from a dead worker goes on with its recording's chain.
                resumed = await resume(self.engine, self.settings.storage_root, call_id)
                self._chain[call_id] = resumed.chain
                call.recorder = self._recorder(call, placed, resumed.next_seq)
                call.recorder.start()
                if resumed.next_seq == 0:
                    await self._set_call(call_id,
                                         recording_started_at=_utc(call.recorder.started_at))
            self.calls[call_id] = call
            self.identity.adopted(call)
            await registry.adopt_call(self.redis, self.settings.media_id, call_id)
            return call

    def _recorder(self, call: Call, placed: registry.PlacedCall | None,
                  first_seq: int) -> Recorder:
        folder = self.settings.storage_root / "recordings" / call.call_id
        mark = Watermark(
            case_no=(placed.case_no if placed else "") or call.call_id,
            terminal_name=placed.terminal_name if placed else "",
            clerk_name=placed.clerk_name if placed else "",
        )

        async def on_segment(closed: ClosedSegment) -> None:
            await self._record_segment(call.call_id, closed)

        return Recorder(
            call.slots, folder, mark, fps=self.settings.media_record_fps,
            segment_s=self.settings.media_segment_s,
            fragment_s=self.settings.media_fragment_s, on_segment=on_segment,
            first_seq=first_seq,
        )

    async def _record_segment(self, call_id: str, closed: ClosedSegment) -> None:
        """Index a closed segment in the chain; while PostgreSQL is away, keep trying (in
        order: the recorder waits), so no segment is left out of the chain."""
        prev = self._chain.get(call_id, GENESIS)
        chained = chain_hash(prev, closed.sha256)
        row = dict(call_id=call_id, seq=closed.seq,
                   path=str(closed.path.relative_to(self.settings.storage_root)),
                   started_at=_utc(closed.started_at), duration_s=closed.duration_s,
                   size_bytes=closed.size_bytes, sha256=closed.sha256, prev_hash=prev,
                   chain_hash=chained)
        for attempt in range(SEGMENT_RETRIES):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(recording_segments).values(**row))
                break
            except (DBAPIError, OSError) as exc:
                if not database_away(exc) or attempt == SEGMENT_RETRIES - 1:
                    raise
                log.warning("segment not indexed yet, database away",
                            extra={"call": call_id, "seq": closed.seq, "error": repr(exc)})
                await asyncio.sleep(SEGMENT_RETRY_S)
        self._chain[call_id] = chained

    async def _set_call(self, call_id: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(media_calls).where(media_calls.c.call_id == call_id).values(**values)
            )

    async def end(self, call_id: str, reason: str, *, notify: bool) -> bool:
        """End a call here; `notify` tells signaling (it did not ask for the end)."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return False
        await call.close()
        final_chain = self._chain.pop(call_id, GENESIS)
        self._creating.pop(call_id, None)
        self._captures.pop(call_id, None)
        values: dict[str, Any] = {"state": "ended", "end_reason": reason,
                                  "ended_at": _utc(self.clock())}
        if call.recorder is not None:
            values["recording_ended_at"] = _utc(call.recorder.ended_at)
            await seal_recording(self.engine, self.settings.evidence_keys, call_id,
                                 call.recorder.segments_total, final_chain, self.clock())
        await self._set_call(call_id, **values)
        await registry.call_ended_here(self.redis, self.settings.media_id, call_id, reason,
                                       notify)
        return True

    async def leave(self, call_id: str, participant_id: str, role: str) -> None:
        """A hang-up: the terminal or the clerk leaving ends the call; a second clerk leaves."""
        call = self.calls.get(call_id)
        if call is None:
            return
        if role == WATCHER:  # a watcher leaving never ends the call
            await self.watching.left(call, participant_id)
            return
        self._note(call_id, CallEventKind.LEFT, role, {"participant": participant_id})
        if role in ("terminal", "clerk"):
            await self.end(call_id, "hangup", notify=True)
        else:
            await call.remove(participant_id)

    # --- scans ------------------------------------------------------------------------

    async def capture(self, call_id: str, taken_by: str) -> dict[str, Any]:
        call = self.calls.get(call_id)
        if call is None:
            raise HubError(404, "no_call", "通话不存在或已结束")
        taken = self._captures.get(call_id, 0)
        if taken >= self.settings.media_max_captures:
            raise HubError(429, "too_many_captures", "这次通话拍的材料已经太多了")
        self._captures[call_id] = taken + 1
        frames = call.capture.snapshot()
        still = await asyncio.to_thread(pick_sharpest, frames)
        if still is None:
            raise HubError(409, "no_document_frames", "还没有收到文件摄像头的画面")
        scan_id = secrets.token_hex(12)
        folder = self.settings.storage_root / "scans" / call_id
        path, thumb = folder / f"{scan_id}.png", folder / f"{scan_id}.thumb.jpg"

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(still.png)
            thumb.write_bytes(still.thumb_jpeg)

        await asyncio.to_thread(write)
        root = self.settings.storage_root
        async with self.engine.begin() as conn:
            await conn.execute(insert(scans).values(
                scan_id=scan_id, call_id=call_id, taken_by=taken_by,
                path=str(path.relative_to(root)), thumb_path=str(thumb.relative_to(root)),
                sha256=still.sha256, width=still.width, height=still.height,
                sharpness=still.sharpness,
            ))
        return {
            "scan_id": scan_id, "call_id": call_id, "sha256": still.sha256,
            "width": still.width, "height": still.height, "sharpness": still.sharpness,
            "thumbnail_url": f"{self.settings.media_url}/scans/{scan_id}/thumb",
        }

    def thumb_path(self, relative: str) -> Path | None:
        """The file under the storage root, or None for a path that would leave it."""
        root = self.settings.storage_root.resolve()
        path = (root / relative).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    # --- health -----------------------------------------------------------------------

    def info(self, now: float) -> WorkerInfo:
        return WorkerInfo(
            worker_id=self.settings.media_id, url=self.settings.media_url,
            capacity=self.settings.media_capacity,
            load=load_figure(len(self.calls), self.settings.media_capacity, self.cpu_fraction,
                             self.pool.load if self.pool is not None else 0.0),
            calls=len(self.calls), pid=os.getpid(), updated_at=now,
        )

    def _cpu_seconds(self) -> float:
        t = self._process.cpu_times()
        own = float(t.user + t.system)
        return own + (self.pool.cpu_seconds() if self.pool is not None else 0.0)

    async def heartbeat(self) -> None:
        # Of one core: the event loop keeps a worker process to about one core; the pool's
        # processes count in the same figure, so a busy pool makes the worker look loaded.
        mark = (time.monotonic(), self._cpu_seconds())
        wall = mark[0] - self._cpu_mark[0]
        if wall > 0:
            self.cpu_fraction = max(0.0, (mark[1] - self._cpu_mark[1]) / wall)
        self._cpu_mark = mark
        await registry.register(self.redis, self.info(self.clock()),
                                self.settings.media_worker_ttl_s)

    async def sweep_once(self, now: float) -> list[str]:
        """End calls whose terminal or clerk has been gone longer than the grace period."""
        ended = []
        for call_id, call in list(self.calls.items()):
            if call.gone_participant(now, self.settings.media_grace_s) is not None:
                try:
                    await self.end(call_id, "participant_gone", notify=True)
                    ended.append(call_id)
                except Exception:
                    log.exception("ending a call failed", extra={"call": call_id})
        return ended

    async def sweep(self) -> None:
        await self.sweep_once(self.clock())

    async def close(self) -> None:
        await self.identity.close()  # before the calls end, so the checks say why they stop
        for call_id in list(self.calls):
            try:
                await self.end(call_id, "worker_stopped", notify=True)
            except Exception:
                log.exception("ending a call at shutdown failed", extra={"call": call_id})
        if self._notes:
            await asyncio.wait(set(self._notes), timeout=5)


async def running(hub: Hub) -> AsyncIterator[None]:
    """Heartbeat and grace sweep for the worker's lifetime (cleanup_ctx helper)."""
    if hub.pool is not None:
        await hub.pool.start()  # warm before registering: no check waits for model loading
    # Registered before the first request, so signaling can place calls at once.
    await hub.heartbeat()
    loops = Background()
    loops.every("heartbeat", hub.settings.media_heartbeat_s, hub.heartbeat)
    loops.every("grace-sweep", 1.0, hub.sweep)
    try:
        yield
    finally:
        await loops.stop()
        await hub.close()
        await registry.unregister(hub.redis, hub.settings.media_id)
        if hub.pool is not None:
            await hub.pool.stop()

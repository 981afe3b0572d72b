"""监看: supervisors watching a call receive-only, and telling its clerks who is watching.

A watcher joins with a "watcher" join token (minted by signaling.watch_api, which also
audits the start). Its offer is answered with the "watcher" plan (media.slots): every
source goes to it, nothing it sends is used. It is not a participant the call needs (the
grace sweep only counts terminal and clerk), its joining is not on the call's timeline,
and its leaving — a hang-up or a lost connection — never ends the call. Each change in
who watches is told to the call's clerks (`call_watching`, through media.notices) and the
end of a watch is audited here, where it is known.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from aiortc import RTCPeerConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from core import audit, keys
from core.messages import CallWatching
from media.call import Call
from media.notices import CLERKS, tell

log = logging.getLogger(__name__)

WATCHER = "watcher"
AUDIT_END = "call_watch_end"


@dataclass(frozen=True)
class Watcher:
    username: str
    display_name: str
    since: float


class Watching:
    """The watchers of the calls on this worker (call id → participant id → watcher)."""

    def __init__(self, redis: aioredis.Redis, engine: AsyncEngine) -> None:
        self.redis = redis
        self.engine = engine
        self.calls: dict[str, dict[str, Watcher]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def who(self, call_id: str, participant_id: str, now: float) -> Watcher:
        """Whom signaling minted this watcher's token for (its name for the clerks)."""
        raw = await self.redis.get(keys.call_watcher(call_id, participant_id))
        try:
            data = json.loads(raw) if raw else {}
            return Watcher(str(data["username"]), str(data["display_name"]), now)
        except (ValueError, KeyError, TypeError):
            # The note expired or is unreadable: the watch still shows, under a plain name.
            return Watcher(participant_id, "值班长", now)

    async def joined(self, call: Call, participant_id: str, watcher: Watcher) -> None:
        self.calls.setdefault(call.call_id, {})[participant_id] = watcher
        member = call.participants.get(participant_id)
        if member is not None:
            pc = member.pc

            @pc.on("connectionstatechange")
            def on_state() -> None:
                # A lost watcher leaves like one who hung up ("disconnected" may recover).
                if pc.connectionState in ("failed", "closed"):
                    self._spawn(self.left(call, participant_id, lost=pc))

        await self.tell(call)

    async def left(self, call: Call, participant_id: str,
                   lost: RTCPeerConnection | None = None) -> None:
        """The watcher hung up, or its connection `lost` is gone: remove it, tell, audit."""
        member = call.participants.get(participant_id)
        if lost is not None and member is not None and member.pc is not lost:
            return  # an old connection replaced by the watcher's rejoin
        watchers = self.calls.get(call.call_id, {})
        watcher = watchers.pop(participant_id, None)
        if not watchers:
            self.calls.pop(call.call_id, None)
        if watcher is None:
            return
        if member is not None and member.role == WATCHER:
            await call.remove(participant_id)
        reason = "call_ended" if call.closed else "connection_lost" if lost else "left"
        await self.tell(call)
        async with self.engine.begin() as conn:
            await audit.append(conn, watcher.username[:128], AUDIT_END, call.call_id, None,
                               {"watcher": participant_id, "display_name": watcher.display_name,
                                "reason": reason},
                               datetime.now(UTC))

    async def tell(self, call: Call) -> None:
        """The call's clerks learn who watches now (sent again when a clerk (re)joins)."""
        names = [w.display_name for w in self.calls.get(call.call_id, {}).values()]
        people = [(p.participant_id, p.role) for p in call.participants.values()]
        try:
            await tell(self.redis, people, CallWatching(call_id=call.call_id, watchers=names),
                       CLERKS)
        except (aioredis.RedisError, OSError):
            log.warning("could not tell the clerks who watches", extra={"call": call.call_id})

    def watching(self, call_id: str) -> bool:
        return bool(self.calls.get(call_id))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a watcher's leaving failed", exc_info=task.exception())

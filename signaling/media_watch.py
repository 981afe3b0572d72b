"""Watching the media workers: calls they ended, and workers whose heartbeat stopped.

A call a worker ended on its own (a hang-up from the terminal, a participant gone too
long) is ended in routing too. The calls of a dead worker move to another live worker
(the same people join again there); only when none can take them do they fail. The first
node to claim a dead worker handles it, so participants are told once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import worker_registry as registry
from core.media_tables import media_calls
from core.states import CallState

log = logging.getLogger("signaling.media_watch")

WATCH_INTERVAL_S = 1.0
EndCall = Callable[[str, str], Awaitable[None]]  # (call id, reason)
MoveCall = Callable[[str, str], Awaitable[bool]]  # (call id, dead worker id) → moved


class MediaWatch:
    def __init__(self, redis: aioredis.Redis, engine: AsyncEngine, end_call: EndCall,
                 move_call: MoveCall) -> None:
        self.redis = redis
        self.engine = engine
        self.end_call = end_call
        self.move_call = move_call

    async def once(self) -> None:
        """One pass: ends reported by workers, then workers whose heartbeat expired."""
        while (ended := await registry.next_ended(self.redis)) is not None:
            await self._end(*ended)
        _, dead = await registry.live_workers(self.redis)
        for worker_id in dead:
            call_ids = await registry.claim_dead(self.redis, worker_id)
            if call_ids:
                log.warning("media worker is gone; failing its calls",
                            extra={"worker": worker_id, "calls": len(call_ids)})
            for call_id in call_ids:
                if not await self._moved(call_id, worker_id):
                    await self._fail(call_id)

    async def _moved(self, call_id: str, worker_id: str) -> bool:
        try:
            return await self.move_call(call_id, worker_id)
        except Exception:  # then it fails as before: the people are told it ended
            log.exception("moving a call to another worker failed", extra={"call": call_id})
            return False

    async def _fail(self, call_id: str) -> None:
        await registry.set_call_state(self.redis, call_id, CallState.FAILED, "media_failed")
        async with self.engine.begin() as conn:
            await conn.execute(update(media_calls).where(media_calls.c.call_id == call_id)
                               .values(state="failed", end_reason="media_failed",
                                       ended_at=datetime.now(UTC)))
        await self._end(call_id, "media_failed")

    async def _end(self, call_id: str, reason: str) -> None:
        try:
            await self.end_call(call_id, reason)
        except Exception:  # an already-ended call must not stop the watcher
            log.info("ending a call in signaling failed",
                     extra={"call": call_id, "why": reason}, exc_info=True)

"""Sessions that can be ended: an index per principal, revocation, and the sockets it closes.

A session lives in Redis (`keys.session(sid)`, TTL); `keys.sessions_of(principal)` lists
the sessions of one staff account or terminal, so logout, deactivation, a role change or a
revoked terminal ends them all at once. The ended ids are published on
`keys.sessions_revoked()`; every node closes its websockets of those sessions (close code
4401). A sweep also closes sockets whose session expired or was lost with a missed message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web

from core import keys
from core.loops import raise_if_cancelling

log = logging.getLogger("signaling.sessions")

SESSION_ENDED = 4401  # websocket close code: log in again (pages stop reconnecting)
SWEEP_S = 15.0


async def index(redis: aioredis.Redis, principal: str, sid: str, ttl_s: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(keys.sessions_of(principal), sid)
        pipe.expire(keys.sessions_of(principal), ttl_s)
        await pipe.execute()


async def end(redis: aioredis.Redis, sids: list[str], principal: str = "") -> int:
    """End these sessions now; their websockets on every node close."""
    if not sids:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*[keys.session(s) for s in sids])
        if principal:
            pipe.srem(keys.sessions_of(principal), *sids)
        pipe.publish(keys.sessions_revoked(), " ".join(sids))
        await pipe.execute()
    return len(sids)


async def end_all(redis: aioredis.Redis, principal: str) -> int:
    """Every session of one account or terminal (deactivated, role changed, revoked)."""
    sids = sorted(str(s) for s in await redis.smembers(keys.sessions_of(principal)))
    ended = await end(redis, sids, principal)
    await redis.delete(keys.sessions_of(principal))
    return ended


class SessionSockets:
    """This node's websockets by session id, closed when their session ends."""

    def __init__(self) -> None:
        self._by_sid: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, sid: str, ws: web.WebSocketResponse) -> None:
        self._by_sid.setdefault(sid, set()).add(ws)

    def remove(self, sid: str, ws: web.WebSocketResponse) -> None:
        socks = self._by_sid.get(sid)
        if socks is not None:
            socks.discard(ws)
            if not socks:
                del self._by_sid[sid]

    def sids(self) -> list[str]:
        return list(self._by_sid)

    async def close(self, sids: list[str]) -> int:
        closed = 0
        for sid in sids:
            for ws in list(self._by_sid.pop(sid, ())):
                closed += 1
                await ws.close(code=SESSION_ENDED, message=b"session ended")
        if closed:
            log.info("websockets of ended sessions closed", extra={"count": closed})
        return closed

    async def listen(self, redis: aioredis.Redis) -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.sessions_revoked())
        try:
            while True:
                # A bounded read, so a cancellation redis-py swallowed is still seen.
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                raise_if_cancelling()
                if msg is not None and msg["type"] == "message":
                    await self.close(str(msg["data"]).split())
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it

    async def sweep(self, redis: aioredis.Redis) -> int:
        """Close sockets whose session is gone (expired, or a revocation message missed)."""
        sids = self.sids()
        if not sids:
            return 0
        async with redis.pipeline(transaction=False) as pipe:
            for s in sids:
                pipe.exists(keys.session(s))
            found = await pipe.execute()
        return await self.close([s for s, n in zip(sids, found, strict=True) if not n])


SOCKETS = web.AppKey("session_sockets", SessionSockets)


def running(redis_of: Callable[[web.Application], aioredis.Redis]
            ) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: the revocation listener and the sweep for this node's lifetime."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sockets = app[SOCKETS]
        redis = redis_of(app)

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(SWEEP_S)
                try:
                    await sockets.sweep(redis)
                except Exception:
                    log.exception("session sweep failed")

        tasks = [asyncio.create_task(sockets.listen(redis), name="sessions-revoked"),
                 asyncio.create_task(sweep_forever(), name="sessions-sweep")]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=5.0)

    return ctx

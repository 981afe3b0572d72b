"""Placing calls on media workers: pick a worker, mint join tokens, ask it to stop or capture.

Signaling places each accepted call on the least-loaded live worker (skipping any above
the load threshold), records the placement in Redis (`core.worker_registry`) and
PostgreSQL, and hands each participant a `MediaJoin` (worker URL, join token, ICE servers
with TURN REST credentials). The queue side sees only the `CallPlacement` protocol.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core import worker_registry as registry
from core.clock import Clock
from core.jointoken import JoinClaims, mint, turn_credentials
from core.media_tables import media_calls
from core.messages import IceServer, MediaJoin
from core.settings import Settings
from core.states import CallState

log = logging.getLogger("signaling.placement")

STOP_TIMEOUT_S = 5.0
ACTION_TIMEOUT_S = 10.0
CallRole = Literal["terminal", "clerk", "second_clerk"]


@dataclass(frozen=True)
class CallStart:
    call_id: str
    ticket_id: str
    item_code: str
    terminal_id: str
    terminal_name: str
    clerk_username: str
    clerk_name: str


class CallPlacement(Protocol):
    """What the queue needs from the media side (a fake in tests, workers in production)."""

    async def start_call(self, call: CallStart) -> dict[str, MediaJoin | None]: ...

    async def join_for(self, call_id: str, participant_id: str,
                       role: str) -> MediaJoin | None: ...

    async def stop_call(self, call_id: str, reason: str) -> None: ...

    async def call_action(self, call_id: str, action: str, actor: str,
                          body: dict[str, Any]) -> dict[str, Any]: ...

    async def move_call(self, call: CallStart, participants: dict[str, CallRole],
                        dead_worker: str) -> dict[str, MediaJoin] | None: ...


def ice_servers(settings: Settings, participant_id: str, now: float) -> list[IceServer]:
    """STUN as configured; TURN with short-lived coturn REST credentials for this person."""
    servers = [IceServer(urls=[url]) for url in settings.media_stun_urls]
    if settings.media_turn_urls and settings.media_turn_secret:
        username, credential = turn_credentials(
            settings.media_turn_secret, participant_id, now, settings.media_turn_ttl_s
        )
        servers.append(IceServer(urls=list(settings.media_turn_urls), username=username,
                                 credential=credential))
    return servers


def media_join(settings: Settings, worker_url: str, call_id: str, participant_id: str,
               role: CallRole, now: float) -> MediaJoin:
    expires_at = now + settings.join_token_ttl_s
    token = mint(settings.join_token_secret,
                 JoinClaims(call_id, participant_id, role, expires_at, issued_at=now))
    return MediaJoin(worker_url=worker_url, call_id=call_id, participant_id=participant_id,
                     role=role, token=token, ice_servers=ice_servers(settings, participant_id, now),
                     expires_at=expires_at)


def control_token(settings: Settings, call_id: str, now: float) -> str:
    claims = JoinClaims(call_id, "signaling", "control", now + 60, issued_at=now)
    return mint(settings.join_token_secret, claims)


class WorkerPlacement:
    """`CallPlacement` on the media workers of the registry, over one HTTP session."""

    def __init__(self, settings: Settings, redis: aioredis.Redis, engine: AsyncEngine,
                 http: aiohttp.ClientSession, clock: Clock) -> None:
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.http = http
        self.clock = clock

    async def start_call(self, call: CallStart) -> dict[str, MediaJoin | None]:
        """Place the call on a worker; join info per participant id (terminal id, username)."""
        live, _ = await registry.live_workers(self.redis)
        worker = registry.pick_worker(live, self.settings.media_load_threshold)
        if worker is None:
            log.warning("no media worker can take the call",
                        extra={"call": call.call_id, "live": len(live)})
            return {call.terminal_id: None, call.clerk_username: None}
        now = self.clock()
        await registry.place_call(self.redis, registry.PlacedCall(
            call_id=call.call_id, worker_id=worker.worker_id, worker_url=worker.url,
            state=CallState.ACTIVE, terminal_id=call.terminal_id,
            terminal_name=call.terminal_name, clerk_username=call.clerk_username,
            clerk_name=call.clerk_name, case_no=call.call_id, item_code=call.item_code,
            started_at=now))
        async with self.engine.begin() as conn:
            await conn.execute(insert(media_calls).values(
                call_id=call.call_id, worker_id=worker.worker_id, terminal_id=call.terminal_id,
                clerk_username=call.clerk_username, item_code=call.item_code,
            ).on_conflict_do_nothing())
        return {
            call.terminal_id: media_join(self.settings, worker.url, call.call_id,
                                         call.terminal_id, "terminal", now),
            call.clerk_username: media_join(self.settings, worker.url, call.call_id,
                                            call.clerk_username, "clerk", now),
        }

    async def move_call(self, call: CallStart, participants: dict[str, CallRole],
                        dead_worker: str) -> dict[str, MediaJoin] | None:
        """Place a call whose worker died on another live one; join info per participant
        (participant id → role), or None when no other worker can take it."""
        live, _ = await registry.live_workers(self.redis)
        worker = registry.pick_worker([w for w in live if w.worker_id != dead_worker],
                                      self.settings.media_load_threshold)
        if worker is None:
            return None
        now = self.clock()
        await registry.place_call(self.redis, registry.PlacedCall(
            call_id=call.call_id, worker_id=worker.worker_id, worker_url=worker.url,
            state=CallState.ACTIVE, terminal_id=call.terminal_id,
            terminal_name=call.terminal_name, clerk_username=call.clerk_username,
            clerk_name=call.clerk_name, case_no=call.call_id, item_code=call.item_code,
            started_at=now))
        async with self.engine.begin() as conn:
            await conn.execute(update(media_calls).where(media_calls.c.call_id == call.call_id)
                               .values(worker_id=worker.worker_id))
        log.warning("call moved to another media worker", extra={
            "call": call.call_id, "from": dead_worker, "to": worker.worker_id})
        return {pid: media_join(self.settings, worker.url, call.call_id, pid, role, now)
                for pid, role in participants.items()}

    async def join_for(self, call_id: str, participant_id: str,
                       role: str) -> MediaJoin | None:
        """Fresh join info for one participant (a reconnect, or the invited second clerk)."""
        placed = await registry.placed_call(self.redis, call_id)
        if placed is None or placed.state != CallState.ACTIVE or not placed.worker_url:
            return None
        join_role: CallRole = (
            "terminal" if role == "terminal"
            else "clerk" if participant_id == placed.clerk_username else "second_clerk"
        )
        return media_join(self.settings, placed.worker_url, call_id, participant_id,
                          join_role, self.clock())

    async def stop_call(self, call_id: str, reason: str) -> None:
        """Tell the call's worker to end it and finalize the recording."""
        placed = await registry.placed_call(self.redis, call_id)
        if placed is None or not placed.worker_url:
            return
        if placed.state == CallState.ACTIVE:
            await registry.set_call_state(self.redis, call_id, CallState.ENDING, reason)
        url = f"{placed.worker_url}/calls/{call_id}/stop"
        headers = {"Authorization": "Bearer " + control_token(self.settings, call_id,
                                                              self.clock())}
        try:
            async with self.http.post(url, params={"reason": reason}, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=STOP_TIMEOUT_S)
                                      ) as resp:
                if resp.status != 200:
                    log.warning("worker refused to stop the call",
                                extra={"call": call_id, "status": resp.status})
        except (aiohttp.ClientError, TimeoutError):
            log.warning("worker unreachable to stop the call", extra={"call": call_id})

    async def call_action(self, call_id: str, action: str, actor: str,
                          body: dict[str, Any]) -> dict[str, Any]:
        """Forward a participant's action to the call's worker (signaling checked who may).

        Returns the worker's answer, or `{"error": {"code", "message"}}`.
        """
        placed = await registry.placed_call(self.redis, call_id)
        if placed is None or placed.state != CallState.ACTIVE or not placed.worker_url:
            return {"error": {"code": "no_media", "message": "通话没有媒体服务"}}
        url = f"{placed.worker_url}/calls/{call_id}/actions/{action}"
        headers = {"Authorization": "Bearer " + control_token(self.settings, call_id,
                                                              self.clock())}
        try:
            async with self.http.post(url, json={**body, "actor": actor}, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=ACTION_TIMEOUT_S)
                                      ) as resp:
                answer: dict[str, Any] = await resp.json()
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError):
            log.warning("worker unreachable for a call action",
                        extra={"call": call_id, "action": action})
            return {"error": {"code": "media_unreachable", "message": "媒体服务暂时无法连接"}}

    async def capture_for(self, call_id: str, username: str) -> dict[str, Any]:
        """Ask the call's worker for a scan on a clerk's behalf.

        Returns the worker's answer: `{scan_id, sha256, width, height, thumbnail_url, ...}`,
        or `{"error": {"code", "message"}}` when there is no scan to give.
        """
        join = await self.join_for(call_id, username, "clerk")
        if join is None:
            return {"error": {"code": "no_media", "message": "通话没有媒体服务"}}
        url = f"{join.worker_url}/calls/{call_id}/capture"
        try:
            async with self.http.post(
                url, headers={"Authorization": f"Bearer {join.token}"},
                timeout=aiohttp.ClientTimeout(total=STOP_TIMEOUT_S * 2),
            ) as resp:
                body: dict[str, Any] = await resp.json()
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {"error": {"code": "media_unreachable", "message": "媒体服务暂时无法连接"}}

"""Call set-up on media workers: pick a worker, mint join tokens, watch worker health.

Signaling places each accepted call on the least-loaded live worker (skipping any above
the load threshold), records the placement in Redis and PostgreSQL, and hands each
participant a `MediaJoin` (worker URL, join token, ICE servers with TURN REST
credentials). A background watcher ends calls the workers report as ended and fails the
calls of a worker whose heartbeat stopped; the first node to claim a dead worker (SREM)
handles it, so participants are told once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from core import keys
from core.jointoken import JoinClaims, mint, turn_credentials
from core.messages import IceServer, MediaJoin
from core.settings import Settings
from media.records import media_calls
from media.registry import live_workers, pick_worker, str_map, strs
from signaling.appkeys import ENGINE, REDIS, SETTINGS
from signaling.loops import raise_if_cancelling

log = logging.getLogger("signaling.calls")

WATCH_INTERVAL_S = 1.0
STOP_TIMEOUT_S = 5.0
JoinRole = Literal["terminal", "clerk", "second_clerk"]


@dataclass(frozen=True)
class CallStart:
    call_id: str
    ticket_id: str
    item_code: str
    terminal_id: str
    terminal_name: str
    clerk_username: str
    clerk_name: str


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
               role: JoinRole, now: float) -> MediaJoin:
    expires_at = now + settings.join_token_ttl_s
    token = mint(settings.join_token_secret,
                 JoinClaims(call_id, participant_id, role, expires_at))
    return MediaJoin(worker_url=worker_url, call_id=call_id, participant_id=participant_id,
                     role=role, token=token, ice_servers=ice_servers(settings, participant_id, now),
                     expires_at=expires_at)


def control_token(settings: Settings, call_id: str, now: float) -> str:
    claims = JoinClaims(call_id, "signaling", "control", now + 60)
    return mint(settings.join_token_secret, claims)


async def start_call(app: web.Application, call: CallStart) -> dict[str, MediaJoin | None]:
    """Place the call on a worker; join info per participant id (terminal id, username)."""
    settings, redis = app[SETTINGS], app[REDIS]
    live, _ = await live_workers(redis)
    worker = pick_worker(live, settings.media_load_threshold)
    if worker is None:
        log.warning("no media worker can take call %s (%d live)", call.call_id, len(live))
        return {call.terminal_id: None, call.clerk_username: None}
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media_call(call.call_id), mapping={
            "worker_id": worker.worker_id, "worker_url": worker.url, "state": "active",
            "terminal_id": call.terminal_id, "terminal_name": call.terminal_name,
            "clerk_username": call.clerk_username, "clerk_name": call.clerk_name,
            "case_no": call.call_id, "item_code": call.item_code, "started_at": repr(now),
        })
        pipe.sadd(keys.media_worker_calls(worker.worker_id), call.call_id)
        await pipe.execute()
    async with app[ENGINE].begin() as conn:
        await conn.execute(insert(media_calls).values(
            call_id=call.call_id, worker_id=worker.worker_id, terminal_id=call.terminal_id,
            clerk_username=call.clerk_username, item_code=call.item_code,
        ).on_conflict_do_nothing())
    return {
        call.terminal_id: media_join(settings, worker.url, call.call_id, call.terminal_id,
                                     "terminal", now),
        call.clerk_username: media_join(settings, worker.url, call.call_id,
                                        call.clerk_username, "clerk", now),
    }


async def join_for(
    app: web.Application, call_id: str, participant_id: str, role: str
) -> MediaJoin | None:
    """Fresh join info for one participant (a reconnect, or the invited second clerk)."""
    placed = str_map(await app[REDIS].hgetall(keys.media_call(call_id)))
    if placed.get("state") != "active" or not placed.get("worker_url"):
        return None
    join_role: JoinRole = (
        "terminal" if role == "terminal"
        else "clerk" if participant_id == placed.get("clerk_username") else "second_clerk"
    )
    return media_join(app[SETTINGS], placed["worker_url"], call_id, participant_id,
                      join_role, time.time())


async def stop_call(app: web.Application, call_id: str, reason: str) -> None:
    """Tell the call's worker to end it and finalize the recording."""
    settings, redis = app[SETTINGS], app[REDIS]
    placed = str_map(await redis.hgetall(keys.media_call(call_id)))
    if not placed.get("worker_url"):
        return
    if placed.get("state") == "active":
        await redis.hset(keys.media_call(call_id), mapping={"state": "ending", "reason": reason})
    url = f"{placed['worker_url']}/calls/{call_id}/stop"
    headers = {"Authorization": "Bearer " + control_token(settings, call_id, time.time())}
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=STOP_TIMEOUT_S)
        ) as session, session.post(url, params={"reason": reason}, headers=headers) as resp:
            if resp.status != 200:
                log.warning("worker refused to stop %s: %s", call_id, resp.status)
    except (aiohttp.ClientError, TimeoutError):
        log.warning("worker of call %s unreachable to stop it", call_id)


async def capture_for(app: web.Application, call_id: str, username: str) -> dict[str, Any]:
    """Ask the call's worker for a scan on a clerk's behalf (the clerk's `capture` intent).

    Returns the worker's answer: `{scan_id, sha256, width, height, thumbnail_url, ...}`, or
    `{"error": {"code", "message"}}` when there is no scan to give.
    """
    join = await join_for(app, call_id, username, "clerk")
    if join is None:
        return {"error": {"code": "no_media", "message": "通话没有媒体服务"}}
    url = f"{join.worker_url}/calls/{call_id}/capture"
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=STOP_TIMEOUT_S * 2)
        ) as session, session.post(
            url, headers={"Authorization": f"Bearer {join.token}"}
        ) as resp:
            body: dict[str, Any] = await resp.json()
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {"error": {"code": "media_unreachable", "message": "媒体服务暂时无法连接"}}


async def _tell_ended(app: web.Application, call_id: str, reason: str) -> None:
    from signaling.service import SERVICE  # the service imports this module

    service = app.get(SERVICE)
    if service is None:
        return
    try:
        await service.end_call(call_id, reason)
    except Exception:  # an already-ended call must not stop the watcher
        log.info("ending call %s (%s) in signaling failed", call_id, reason, exc_info=True)


async def _fail_worker(app: web.Application, worker_id: str) -> None:
    redis = app[REDIS]
    call_ids = strs(await redis.smembers(keys.media_worker_calls(worker_id)))
    log.warning("media worker %s is gone; failing %d calls", worker_id, len(call_ids))
    for call_id in call_ids:
        await redis.hset(keys.media_call(call_id),
                         mapping={"state": "failed", "reason": "media_failed"})
        async with app[ENGINE].begin() as conn:
            await conn.execute(update(media_calls).where(media_calls.c.call_id == call_id)
                               .values(state="failed", end_reason="media_failed",
                                       ended_at=datetime.now(UTC)))
        await _tell_ended(app, call_id, "media_failed")
    await redis.delete(keys.media_worker_calls(worker_id))


async def watch_once(app: web.Application) -> None:
    """One pass: ends reported by workers, then workers whose heartbeat expired."""
    redis = app[REDIS]
    while (raw := await redis.lpop(keys.media_ended())) is not None:
        event = json.loads(strs([raw])[0])
        await _tell_ended(app, str(event["call_id"]), str(event["reason"]))
    _, dead = await live_workers(redis)
    for worker_id in dead:
        if await redis.srem(keys.media_workers(), worker_id):  # claimed by this node only
            await _fail_worker(app, worker_id)


async def _watch(app: web.Application) -> None:
    while True:
        try:
            await watch_once(app)
        except Exception:
            log.exception("media watcher pass failed")
        raise_if_cancelling()
        await asyncio.sleep(WATCH_INTERVAL_S)


async def _watcher(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_watch(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    """Add the routes and background tasks of call handling to the signaling app."""
    app.cleanup_ctx.append(_watcher)


__all__ = ["CallStart", "capture_for", "join_for", "setup", "start_call", "stop_call"]

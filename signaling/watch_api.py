"""监看: an admin or supervisor asks to watch a live call receive-only.

`POST /api/supervisor/calls/{call_id}/watch` checks the call is live and placed on a
worker, notes on Redis who the watcher is (the worker shows that name to the clerks),
audits the start and answers with a "watcher" join for the call's worker. The worker does
the rest (media.watchers): it sends every track, takes none, tells the clerks and audits
the end.
"""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel

from core import keys
from core import worker_registry as registry
from core.jointoken import JoinClaims, mint
from core.messages import MediaJoin
from core.replies import http_error
from core.states import CallState
from signaling import audit_trail
from signaling.appkeys import CLOCK, ENGINE, REDIS, SETTINGS
from signaling.auth import SessionRole, require_session
from signaling.node import NODE
from signaling.placement import ice_servers

AUDIT_START = "call_watch_start"
WATCHERS: tuple[SessionRole, ...] = ("admin", "supervisor")


class WatchGranted(BaseModel):
    """The answer: what is watched and how to join it receive-only."""

    call_id: str
    item_code: str
    terminal_name: str
    clerk_name: str
    media: MediaJoin


def watcher_id(username: str) -> str:
    """One watch per person and call: a second tab's join replaces the first."""
    return f"watch-{username}"


async def watch_call(request: web.Request) -> web.Response:
    session = await require_session(request, *WATCHERS)
    call_id = request.match_info["call_id"]
    call = await request.app[NODE].store.call(call_id)
    if call is None or not call.active:
        raise http_error(web.HTTPGone, "call_ended", "通话已经结束，不能监看")
    redis = request.app[REDIS]
    placed = await registry.placed_call(redis, call_id)
    if placed is None or placed.state != CallState.ACTIVE or not placed.worker_url:
        raise http_error(web.HTTPConflict, "no_media", "这个通话没有视频，不能监看")
    settings = request.app[SETTINGS]
    now = request.app[CLOCK]()
    participant = watcher_id(session.who)
    expires_at = now + settings.join_token_ttl_s
    token = mint(settings.join_token_secret,
                 JoinClaims(call_id, participant, "watcher", expires_at, issued_at=now))
    await redis.set(keys.call_watcher(call_id, participant),
                    json.dumps({"username": session.who, "display_name": session.display_name},
                               ensure_ascii=False),
                    ex=int(settings.join_token_ttl_s) + 60)
    await audit_trail.note(request.app[ENGINE], session.who, AUDIT_START, call_id,
                           {"watcher": participant, "display_name": session.display_name,
                            "clerk": call.clerk, "terminal": call.terminal_id})
    media = MediaJoin(worker_url=placed.worker_url, call_id=call_id, participant_id=participant,
                      role="watcher", token=token,
                      ice_servers=ice_servers(settings, participant, now), expires_at=expires_at)
    granted = WatchGranted(call_id=call_id, item_code=call.item_code,
                           terminal_name=call.terminal_name,
                           clerk_name=call.clerk_name or call.clerk, media=media)
    return web.json_response(granted.model_dump(mode="json"))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/supervisor/calls/{call_id}/watch", watch_call)

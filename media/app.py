"""The media worker's HTTP side (aiohttp): join, hang up, capture, thumbnails, stop, replay,
health.

`POST /calls/{call_id}/join` is WHIP-like: a join token and a complete SDP offer in, the
SDP answer out. Every other call-scoped request carries a token as a bearer header (never
in the URL): the participant's current join token, or a fresh one (used once). Join and
control tokens are single use. `/health` (figures, call ids) needs `OPS_TOKEN` (or a
loopback caller when none is set); `/healthz` only says the worker is up. Errors are JSON:
`{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import psutil  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import select

from core import keys
from core.jointoken import JoinClaims, JoinTokenError, verify
from core.media_tables import scans
from core.ops import ops_allowed
from core.records import make_engine
from core.replies import error_response
from core.settings import Settings
from media import doc_capture_http
from media.hub import Hub, HubError, running
from media.ice import announce_host_addresses
from media.origins import allowed_origins
from media.replay_http import REPLAYS, ReplayService, replay_stream

log = logging.getLogger("media.app")

HUB = web.AppKey("hub", Hub)
SETTINGS = web.AppKey("settings", Settings)
MAX_OFFER_BYTES = 64 * 1024


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except JoinTokenError as exc:
        return error_response(401, exc.code, exc.message)
    except HubError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("request %s failed", request.path)
        return error_response(500, "internal", "媒体服务出错，请稍后重试")


@web.middleware
async def _cors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Pages served by signaling call the worker directly (join, capture, thumbnails)."""
    origin = request.headers.get("Origin", "")
    allowed = origin in allowed_origins(request.app[SETTINGS])
    if request.method == "OPTIONS":
        if not allowed:
            return error_response(403, "origin_refused", "来源不被允许")
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if allowed and not response.prepared:  # a streamed reply (a replay) set its own
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return ""


async def _use_once(request: web.Request, claims: JoinClaims) -> None:
    """Remember the token id until it expires: a second use is refused."""
    ttl = max(1, int(claims.expires_at - request.app[HUB].clock()) + 1)
    fresh = await request.app[HUB].redis.set(keys.join_token_used(claims.token_id), "1",
                                             nx=True, ex=ttl)
    if not fresh:
        raise JoinTokenError("token_used", "入会凭证已经用过，请刷新页面重新加入")


async def _participant(request: web.Request, roles: set[str]) -> JoinClaims:
    """A participant's request: its current join token, or a fresh token used once."""
    claims = _claims(request, _bearer(request), roles)
    if request.app[HUB].current_token(claims.call_id, claims.participant_id) \
            != claims.token_id:
        await _use_once(request, claims)
    return claims


def _claims(request: web.Request, token: str, roles: set[str] | None = None) -> JoinClaims:
    if not token:
        raise JoinTokenError("missing_token", "缺少入会凭证")
    claims = verify(request.app[SETTINGS].join_token_secret, token, request.app[HUB].clock())
    call_id = request.match_info.get("call_id")
    if call_id is not None and claims.call_id != call_id:
        raise HubError(403, "wrong_call", "入会凭证不属于这个通话")
    if roles is not None and claims.role not in roles:
        raise HubError(403, "wrong_role", "当前身份不能执行这个操作")
    return claims


async def join(request: web.Request) -> web.Response:
    if (request.content_length or 0) > MAX_OFFER_BYTES:
        raise HubError(413, "offer_too_large", "SDP 过大")
    try:
        body = await request.json()
        sdp = str(body["sdp"])
        token = str(body.get("token") or _bearer(request))
    except (ValueError, KeyError, TypeError) as exc:
        raise HubError(400, "bad_request", "请求应为 JSON：{token, sdp}") from exc
    claims = _claims(request, token, {"terminal", "clerk", "second_clerk", "watcher"})
    hub = request.app[HUB]
    await hub.refuse_ended(claims.call_id)
    await _use_once(request, claims)
    answer = await hub.join(claims.call_id, claims.participant_id, claims.role, sdp,
                            claims.token_id, claims.issued_at)
    return web.json_response({"type": "answer", "sdp": answer,
                              "participant_id": claims.participant_id})


async def leave(request: web.Request) -> web.Response:
    claims = await _participant(request, {"terminal", "clerk", "second_clerk", "watcher"})
    await request.app[HUB].leave(claims.call_id, claims.participant_id, claims.role)
    return web.json_response({"ok": True})


async def stop(request: web.Request) -> web.Response:
    claims = _claims(request, _bearer(request), {"control"})
    await _use_once(request, claims)
    reason = request.query.get("reason", "hangup")[:64]
    ended = await request.app[HUB].end(claims.call_id, reason, notify=False)
    return web.json_response({"ended": ended})


async def capture(request: web.Request) -> web.Response:
    claims = await _participant(request, {"clerk", "second_clerk"})
    scan = await request.app[HUB].capture(claims.call_id, claims.participant_id)
    return web.json_response(scan, status=201)  # the thumbnail: GET with the same bearer


async def thumb(request: web.Request) -> web.StreamResponse:
    claims = await _participant(request, {"clerk", "second_clerk"})
    hub = request.app[HUB]
    async with hub.engine.connect() as conn:
        row = (await conn.execute(
            select(scans.c.call_id, scans.c.thumb_path)
            .where(scans.c.scan_id == request.match_info["scan_id"])
        )).first()
    path = hub.thumb_path(row.thumb_path) if row is not None else None
    if row is None or row.call_id != claims.call_id or path is None:
        raise HubError(404, "no_scan", "找不到这张扫描件")
    return web.FileResponse(path, headers={"Content-Type": "image/jpeg",
                                           "Cache-Control": "private, no-store"})


async def action(request: web.Request) -> web.Response:
    """A call action signaling forwards on a participant's behalf (`actor` in the body)."""
    await _use_once(request, _claims(request, _bearer(request), {"control"}))
    if (request.content_length or 0) > MAX_OFFER_BYTES:
        raise HubError(413, "too_large", "请求过大")
    try:
        body = await request.json()
        actor = str(body.pop("actor"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HubError(400, "bad_request", "请求应为 JSON：{actor, ...}") from exc
    answer = await request.app[HUB].act(request.match_info["call_id"],
                                        request.match_info["action"], body, actor)
    return web.json_response(answer)


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds so far per kind of thread (event loop, decoders, recorder, encoders)."""
    names = {t.native_id: re.sub(r"[-_]\d+(_\d+)?$", "", t.name)
             for t in threading.enumerate()}
    out: dict[str, float] = {}
    for t in psutil.Process().threads():
        name = names.get(t.id, "other")
        out[name] = round(out.get(name, 0.0) + t.user_time + t.system_time, 3)
    return out


async def alive(request: web.Request) -> web.Response:
    """For container health checks: up or not, nothing more."""
    return web.json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    if not ops_allowed(request, request.app[SETTINGS]):
        return error_response(401, "ops_token_required", "需要运维令牌")
    hub = request.app[HUB]
    info = hub.info(hub.clock())
    calls = {
        call_id: {
            "participants": sorted(call.participants),
            "fps": {name: round(s.fps(), 2) for name, s in call.stats.items() if s.frames},
            "recording": None if call.recorder is None else vars(call.recorder.stats),
            "forwarding": call.forwarding(),
        }
        for call_id, call in hub.calls.items()
    }
    pool = None if hub.pool is None else hub.pool.figures()
    return web.json_response({**info.to_hash(), "calls_detail": calls,
                              "cpu_by_thread": cpu_by_thread(), "verification_pool": pool,
                              "replays": request.app[REPLAYS].figures()})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[_cors, _json_errors], client_max_size=MAX_OFFER_BYTES * 2)
    app[SETTINGS] = settings
    announce_host_addresses(settings.media_ice_hosts)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        engine = make_engine(settings.database_url)
        hub = Hub(settings, redis, engine)
        app[HUB] = hub
        app[REPLAYS] = ReplayService(settings, engine)
        try:
            async for _ in running(hub):
                yield
        finally:
            await app[REPLAYS].close()
            await engine.dispose()
            await redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/calls/{call_id}/join", join)
    app.router.add_post("/calls/{call_id}/leave", leave)
    app.router.add_post("/calls/{call_id}/stop", stop)
    app.router.add_post("/calls/{call_id}/capture", capture)
    app.router.add_post("/calls/{call_id}/actions/{action}", action)
    app.router.add_get("/scans/{scan_id}/thumb", thumb)
    app.router.add_get("/replay/stream", replay_stream)
    app.router.add_get("/health", health)
    app.router.add_get("/healthz", alive)
    doc_capture_http.setup(app, HUB, _participant)  # the capture panel's routes
    return app

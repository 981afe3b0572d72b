"""The signaling application factory, used by `python -m signaling` and by the tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from aiohttp import WSCloseCode, web
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import make_store
from core.catalogue import search
from core.clock import Clock, wall
from core.records import database_away, make_engine
from core.replies import http_error
from core.settings import ROOT, Settings
from signaling import (
    admin_api,
    auth,
    cases_api,
    certificates_api,
    figures,
    guide_page,
    identity_api,
    kiosk_certificates,
    materials_api,
    policy,
    qa_api,
    qa_evaluations,
    qa_export,
    qa_flags_api,
    qa_holds,
    reports,
    reviewer_api,
    satisfaction,
    scans_api,
    sessions,
    supervisor,
    verify_page,
    watch_api,
)
from signaling.appkeys import CASES, CLOCK, ENGINE, REDIS, SETTINGS
from signaling.catalogue import Catalogue
from signaling.media_watch import WATCH_INTERVAL_S, MediaWatch
from signaling.node import NODE, SignalingNode
from signaling.origin_check import origin_of, same_origin
from signaling.placement import CallPlacement, WorkerPlacement
from signaling.ws import ws_handler

log = logging.getLogger("signaling.app")
WEB_ROOT = ROOT / "web"
PAGES = ("terminal", "clerk", "reviewer", "qa", "supervisor", "admin")

# Nothing is loaded from outside the server; pages connect only to the service itself and
# to its media workers (MEDIA_PUBLIC_URL, MEDIA_ORIGINS).
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
       "connect-src {connect}; style-src 'self' 'unsafe-inline'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PERMISSIONS = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()"


def security_headers(settings: Settings) -> dict[str, str]:
    media = origin_of(settings.media_url)
    workers = {media, media.replace("://127.0.0.1", "://localhost"),
               media.replace("://localhost", "://127.0.0.1"),
               *(origin_of(o) for o in settings.media_origins)} - {""}
    headers = {"Content-Security-Policy": CSP.format(connect=" ".join(
                   ["'self'", *sorted(workers)])),
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
               "Permissions-Policy": PERMISSIONS, "X-Frame-Options": "DENY"}
    if settings.cookie_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADERS: web.AppKey[dict[str, str]] = web.AppKey("security_headers")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; an unexpected failure becomes a plain-words 500."""
    headers = request.app[HEADERS]
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        for name, value in headers.items():
            exc.headers.setdefault(name, value)
        raise
    except Exception as exc:
        if database_away(exc):
            # PostgreSQL away (a restart, a failover): nothing was saved, and the person is told.
            log.warning("database unavailable", extra={
                "path": request.path, "method": request.method, "error": repr(exc)})
            raise http_error(web.HTTPServiceUnavailable, "db_unavailable",
                             "系统暂时无法保存（数据库连接中断），这次没有保存，您填写的内容已保留，"
                             "请稍后再试") from exc
        log.exception("request failed", extra={"path": request.path, "method": request.method})
        raise http_error(web.HTTPInternalServerError, "internal",
                         "服务器暂时出错，请稍后再试") from exc
    if not resp.prepared:
        for name, value in headers.items():
            resp.headers.setdefault(name, value)
    return resp


async def list_items(request: web.Request) -> web.Response:
    await auth.require_session(request)
    query = request.query.get("q", "")[:64]
    found = search(request.app[NODE].catalogue.items.values(), query,
                   limit=0 if not query else 8)
    return web.json_response([
        it.model_dump(include={"code", "name", "plain_name", "category", "level",
                               "department", "materials", "time_limit_days"})
        for it in found
    ])


async def get_item(request: web.Request) -> web.Response:
    await auth.require_session(request)
    item = request.app[NODE].catalogue.get(request.match_info["code"])
    if item is None:
        raise http_error(web.HTTPNotFound, "unknown_item", "没有这个事项")
    return web.json_response(item.model_dump())


async def health(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    return web.json_response({"ok": True, "node": request.app[SETTINGS].node_id})


def _page(name: str) -> Handler:
    path = WEB_ROOT / name / "index.html"

    async def serve(request: web.Request) -> web.StreamResponse:
        if not path.exists():
            raise http_error(web.HTTPNotFound, "no_page", "页面尚未提供")
        return web.FileResponse(path)

    return serve


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


PlacementFactory = Callable[[Settings, aioredis.Redis, AsyncEngine, aiohttp.ClientSession,
                             Clock], CallPlacement]


def _resources(clock: Clock, placement: PlacementFactory
               ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        # A blocking pool waits (bounded) for a free connection under a burst instead of
        # failing the request, as redis-py's default pool does when it runs out.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, decode_responses=True, max_connections=512, timeout=10,
            socket_timeout=10, socket_connect_timeout=5, health_check_interval=15)
        redis = app[REDIS] = aioredis.Redis(connection_pool=pool)
        engine = app[ENGINE] = make_engine(settings.database_url)
        app[CASES] = make_store(engine, settings)
        # One HTTP client session for the process (calls to the media workers).
        http = aiohttp.ClientSession()
        catalogue = Catalogue()
        await catalogue.load(engine)
        node = app[NODE] = SignalingNode(
            settings, redis, catalogue, placement(settings, redis, engine, http, clock), clock)
        watch = MediaWatch(redis, engine, lambda call_id, reason: node.calls.end(call_id, reason),
                           node.calls.move)
        await node.start()
        node.loops.every("media-watch", WATCH_INTERVAL_S, watch.once)
        try:
            yield
        finally:
            await node.stop()
            await http.close()
            await engine.dispose()
            await redis.aclose()

    return resources


async def _close_websockets(app: web.Application) -> None:
    for conn in app[NODE].delivery.conns.all():
        await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def create_app(settings: Settings, clock: Clock = wall,
               placement: PlacementFactory = WorkerPlacement) -> web.Application:
    """The signaling app; tests pass their own clock and media side."""
    app = web.Application(middlewares=[guard, same_origin, policy.enforce],
                          client_max_size=8 * 1024 * 1024)
    app[SETTINGS] = settings
    app[HEADERS] = security_headers(settings)
    app[CLOCK] = clock
    app[sessions.SOCKETS] = sessions.SessionSockets()
    app.cleanup_ctx.append(_resources(clock, placement))
    app.cleanup_ctx.append(sessions.running(lambda a: a[REDIS]))
    app.on_shutdown.append(_close_websockets)
    auth.setup_routes(app)
    figures.setup_routes(app)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/api/items", list_items)
    app.router.add_get("/api/items/{code}", get_item)
    app.router.add_get("/healthz", health)
    app.router.add_get("/", _index)
    for name in PAGES:
        app.router.add_get(f"/{name}/", _page(name))
    app.router.add_static("/web/", Path(WEB_ROOT), follow_symlinks=False)
    cases_api.setup_routes(app)
    reviewer_api.setup_routes(app)
    certificates_api.setup_routes(app)
    verify_page.setup_routes(app)
    scans_api.setup_routes(app)
    identity_api.setup_routes(app)
    for qa in (qa_api, qa_flags_api, qa_evaluations, qa_holds, qa_export):
        qa.setup_routes(app)
    kiosk_certificates.setup_routes(app)
    supervisor.setup_routes(app)  # after the resources: its loop needs the node
    satisfaction.setup_routes(app)
    admin_api.setup_routes(app)
    reports.setup_routes(app)
    guide_page.setup_routes(app)
    watch_api.setup_routes(app)
    materials_api.setup_routes(app)
    return app

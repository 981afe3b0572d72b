"""CSRF and cross-site websockets: state-changing requests and the websocket upgrade must
come from the service's own pages, and request bodies must be JSON.

Browsers send `Origin` on every POST and websocket handshake; one that names another site
is refused (403 `origin_refused`), as is a request the browser marks `Sec-Fetch-Site:
cross-site`. A form's body (the content types a page may send across sites without a
preflight) is refused with 415 `json_required`; every route reads JSON only. Clients
that are not browsers send no `Origin` and are not a CSRF risk; the session cookie is
`SameSite=Strict` as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from core.replies import http_error
from core.settings import Settings
from signaling.appkeys import SETTINGS

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What an HTML form (or a no-preflight fetch) can send across sites: never accepted.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data",
                        "text/plain"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def allowed_origins(settings: Settings, request: web.Request) -> set[str]:
    base = origin_of(settings.base_url)
    found = {base, base.replace("://127.0.0.1", "://localhost"),
             base.replace("://localhost", "://127.0.0.1")}
    if settings.run_mode == "local":  # make run on any port or LAN address, test servers
        found.add(f"{request.scheme}://{request.host}")
    return found


def _is_upgrade(request: web.Request) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in STATE_CHANGING and not _is_upgrade(request):
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin not in allowed_origins(request.app[SETTINGS], request):
        raise http_error(web.HTTPForbidden, "origin_refused", "请求来源不被允许")
    if origin is None and request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise http_error(web.HTTPForbidden, "origin_refused", "请求来源不被允许")
    if request.method in STATE_CHANGING and request.body_exists \
            and request.content_type in FORM_TYPES:
        raise http_error(web.HTTPUnsupportedMediaType, "json_required", "请求内容须为 JSON")
    return await handler(request)

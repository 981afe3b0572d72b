"""The worker's routes of the capture panel (added to the app by one `setup` call).

The clerk opens and steers the panel and presses 拍照 with its own join token as a bearer;
the kiosk uploads the still it took with its own; both read the flattened page the same
way. The body of a still is read in chunks up to `MAX_STILL_BYTES`, then hashed and judged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from core.document_tables import document_scans
from core.jointoken import JoinClaims
from media.doc_capture import MAX_STILL_BYTES, DocCapture, PanelRequest
from media.hub import Hub, HubError

DOCS = web.AppKey("doc_capture", DocCapture)
CLERK_ROLES = {"clerk", "second_clerk"}
UPLOAD_ROLES = {"terminal", "clerk", "second_clerk"}
MAX_JSON = 4096

Authorise = Callable[[web.Request, set[str]], Awaitable[JoinClaims]]


async def _body(request: web.Request, limit: int) -> bytes:
    if (request.content_length or 0) > limit:
        raise HubError(413, "still_too_large", "照片太大")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise HubError(413, "still_too_large", "照片太大")
        chunks.append(chunk)
    return b"".join(chunks)


def setup(app: web.Application, hub_key: web.AppKey[Hub], authorise: Authorise) -> None:
    """Add the routes; the panels live as long as the app's hub."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[DOCS] = DocCapture(app[hub_key])
        yield
        await app[DOCS].stop()

    async def panel(request: web.Request) -> web.Response:
        claims = await authorise(request, CLERK_ROLES)
        try:
            req = PanelRequest.model_validate_json(await _body(request, MAX_JSON))
        except ValidationError as exc:
            raise HubError(400, "bad_request", "请求应为 JSON：{open, material_code, ...}") \
                from exc
        return web.json_response(
            await app[DOCS].set_panel(claims.call_id, claims.participant_id, req))

    async def take(request: web.Request) -> web.Response:
        claims = await authorise(request, CLERK_ROLES)
        return web.json_response(await app[DOCS].ask_take(claims.call_id,
                                                          claims.participant_id))

    async def still(request: web.Request) -> web.Response:
        claims = await authorise(request, UPLOAD_ROLES)
        take_id = request.query.get("take_id") or None
        data = await _body(request, MAX_STILL_BYTES)
        answer = await app[DOCS].upload_still(claims.call_id, claims.participant_id, data,
                                              take_id)
        return web.json_response(answer, status=201 if answer["accepted"] else 422)

    async def video_frame(request: web.Request) -> web.Response:
        claims = await authorise(request, UPLOAD_ROLES)
        answer = await app[DOCS].video_frame(claims.call_id, claims.participant_id,
                                             request.query.get("take_id") or None)
        return web.json_response(answer, status=201 if answer["accepted"] else 422)

    async def page(request: web.Request) -> web.StreamResponse:
        return await _page(request, app[hub_key], authorise)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/calls/{call_id}/documents/panel", panel)
    app.router.add_post("/calls/{call_id}/documents/take", take)
    app.router.add_post("/calls/{call_id}/documents/still", still)
    app.router.add_post("/calls/{call_id}/documents/video-frame", video_frame)
    app.router.add_get("/calls/{call_id}/documents/{scan_id}/page", page)


async def _page(request: web.Request, hub: Hub, authorise: Authorise) -> web.StreamResponse:
    """The flattened page, for the participants of the call it was taken in."""
    claims = await authorise(request, UPLOAD_ROLES)
    async with hub.engine.connect() as conn:
        row = (await conn.execute(
            select(document_scans.c.call_id, document_scans.c.flat_path)
            .where(document_scans.c.scan_id == request.match_info["scan_id"])
        )).first()
    path = hub.thumb_path(row.flat_path) if row is not None else None
    if row is None or row.call_id != claims.call_id or path is None:
        raise HubError(404, "no_scan", "找不到这张扫描件")
    headers: dict[str, Any] = {"Content-Type": "image/jpeg", "Cache-Control": "private, no-store"}
    return web.FileResponse(path, headers=headers)

"""`GET /replay/stream?from=SECONDS`: a recording rendered for one viewer, as a stream.

The replay ticket (minted by signaling after it logged the access) comes as a bearer token.
The worker reads the call's segments from PostgreSQL and the storage root, renders them
with the viewer's mark in its replay threads and writes fragmented MP4 as it goes: the
first fragment leaves after about one second of pictures. It renders at most
`qa_replay_lead_s` ahead of real time (a download goes as fast as the reader takes it),
so a viewer costs what one real-time encode costs. `X-Replay-Start` says where the stream
begins in the recording. At most `qa_replay_max_viewers` at once; more get 503.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.media_tables import recording_segments
from core.replayticket import ReplayClaims, ReplayTicketError, verify
from core.replies import error_response
from core.settings import Settings
from media.origins import allowed_origins
from media.replay import CODECS, ReplayRender, SourceSegment, warm_up
from media.viewer_mark import ViewerMark

log = logging.getLogger(__name__)

CHUNK_S = 0.5  # of recording per render step: small enough to keep the loop responsive
EXPOSED = "X-Replay-Start, X-Replay-Codecs"
PACE_S = 0.25  # while ahead of real time: how often to look whether the viewer is still there


class ReplayService:
    """The worker's replays: the render threads, the viewers now served, their figures."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                       thread_name_prefix="replay")
        self.active = 0
        self.served = 0
        self.refused = 0
        self.pool.submit(warm_up)  # the first viewer should not wait for fonts and codecs

    async def segments(self, call_id: str) -> list[SourceSegment]:
        """The call's segments in order, placed on the recording's time line."""
        t = recording_segments.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.seq, t.path, t.started_at, t.duration_s)
                                       .where(t.call_id == call_id).order_by(t.seq))).all()
        root = self.settings.storage_root.resolve()
        out: list[SourceSegment] = []
        first = rows[0].started_at if rows else None
        for row in rows:
            path = (root / row.path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                continue  # a missing file: the integrity line names it; play the rest
            offset = (row.started_at - first).total_seconds() if first else 0.0
            out.append(SourceSegment(int(row.seq), Path(path), offset, float(row.duration_s)))
        return out

    def figures(self) -> dict[str, int]:
        return {"active": self.active, "served": self.served, "refused": self.refused}

    async def close(self) -> None:
        await asyncio.to_thread(self.pool.shutdown, True)


REPLAYS = web.AppKey("replays", ReplayService)


def _claims(request: web.Request) -> ReplayClaims:
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
    if not token:
        raise ReplayTicketError("missing_ticket", "缺少回放凭证")
    return verify(request.app[REPLAYS].settings.join_token_secret, token, time.time())


def _start_at(request: web.Request) -> float:
    try:
        value = float(request.query.get("from", "0"))
    except ValueError:
        return 0.0
    return min(max(value, 0.0), 24 * 3600.0) if value == value else 0.0  # NaN → 0


def _headers(request: web.Request, claims: ReplayClaims, start: float) -> dict[str, str]:
    headers = {"Content-Type": "video/mp4", "Cache-Control": "no-store",
               "X-Replay-Start": f"{start:.3f}", "X-Replay-Codecs": CODECS}
    origin = request.headers.get("Origin", "")
    if origin in allowed_origins(request.app[REPLAYS].settings):
        headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                        "Access-Control-Expose-Headers": EXPOSED})
    if claims.kind == "download":
        headers["Content-Disposition"] = (
            f'attachment; filename="replay-{claims.call_id}-{claims.access_id}.mp4"')
    return headers


async def replay_stream(request: web.Request) -> web.StreamResponse:
    try:
        claims = _claims(request)
    except ReplayTicketError as exc:
        return error_response(401, exc.code, exc.message)
    service = request.app[REPLAYS]
    settings = service.settings
    if service.active >= settings.qa_replay_max_viewers:
        service.refused += 1
        return error_response(503, "replay_busy", "同时回放的人数已满，请稍后再试")
    segments = await service.segments(claims.call_id)
    if not segments:
        return error_response(404, "no_recording", "这次通话没有可回放的录像")
    render = ReplayRender(segments, _start_at(request),
                          ViewerMark(claims.viewer_name, claims.viewer),
                          settings.media_record_fps)
    loop = asyncio.get_running_loop()
    service.active += 1
    try:
        try:
            start = await loop.run_in_executor(service.pool, render.open)
        except (ValueError, OSError) as exc:
            log.warning("replay could not start", extra={"call": claims.call_id,
                                                         "error": repr(exc)})
            return error_response(422, "unplayable", "录像文件无法播放")
        response = web.StreamResponse(headers=_headers(request, claims, start))
        await response.prepare(request)
        await _send(request, response, render, loop, service,
                    None if claims.kind == "download" else settings.qa_replay_lead_s)
        service.served += 1
        return response
    finally:
        service.active -= 1
        await loop.run_in_executor(service.pool, render.close)


async def _send(request: web.Request, response: web.StreamResponse, render: ReplayRender,
                loop: asyncio.AbstractEventLoop, service: ReplayService,
                lead_s: float | None) -> None:
    transport = request.transport
    began = loop.time()
    first = render.start_s
    try:
        while not render.done:
            data: bytes = await loop.run_in_executor(service.pool, render.step, CHUNK_S)
            if data:
                await response.write(data)
            while lead_s is not None and (
                    render.reached_s - first) - (loop.time() - began) > lead_s:
                if transport is None or transport.is_closing():
                    raise ConnectionResetError("the viewer left")  # free the slot now
                await asyncio.sleep(PACE_S)
        await response.write_eof()
    except ConnectionResetError:
        log.info("replay viewer left", extra={"frames": render.frames})

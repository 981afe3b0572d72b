"""Legal holds (冻结): a case or a recording kept past its retention period until released.

QA or admin place one with a reason; only admin releases it. The retention job reads the
active holds (and every open 问题件) and deletes nothing they cover.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import insert, select, update

from approval.tables import cases
from core import audit
from core.media_tables import media_calls
from core.qa_tables import legal_holds
from core.replies import http_error
from signaling.appkeys import ENGINE
from signaling.auth import require_session
from signaling.case_http import CASE_NO, body, jsonable, now
from signaling.qa_flags_api import CALL_ID


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_no: str | None = Field(default=None, pattern=CASE_NO.pattern)
    call_id: str | None = Field(default=None, pattern=CALL_ID)
    reason: str = Field(min_length=2, max_length=1000)

    @model_validator(mode="after")
    def _subject(self) -> HoldRequest:
        if not self.case_no and not self.call_id:
            raise ValueError("请指明办件编号或录像")
        return self


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000)


def _hold_id(request: web.Request) -> int:
    raw = request.match_info["hold_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise http_error(web.HTTPNotFound, "no_hold", "没有这项冻结")
    return int(raw)


async def place_hold(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin")
    req = await body(request, HoldRequest)
    at = now()
    async with request.app[ENGINE].begin() as conn:
        if req.case_no and (await conn.execute(select(cases.c.case_no).where(
                cases.c.case_no == req.case_no))).first() is None:
            raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
        if req.call_id and (await conn.execute(select(media_calls.c.call_id).where(
                media_calls.c.call_id == req.call_id))).first() is None:
            raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
        hold_id = int((await conn.execute(insert(legal_holds).values(
            case_no=req.case_no, call_id=req.call_id, reason=req.reason,
            placed_by=session.who, placed_at=at).returning(legal_holds.c.hold_id))
        ).scalar_one())
        await audit.append(conn, session.who, "qa.hold", req.case_no or req.call_id or "",
                           None, {"hold_id": hold_id, "call_id": req.call_id,
                                  "reason": req.reason}, at)
    return web.json_response({"hold_id": hold_id}, status=201)


async def release_hold(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    hold_id = _hold_id(request)
    req = await body(request, ReleaseRequest)
    at = now()
    async with request.app[ENGINE].begin() as conn:
        hold = (await conn.execute(select(legal_holds).where(
            legal_holds.c.hold_id == hold_id).with_for_update())).mappings().first()
        if hold is None:
            raise http_error(web.HTTPNotFound, "no_hold", "没有这项冻结")
        if hold["released_at"] is not None:
            raise http_error(web.HTTPConflict, "already_released", "这项冻结已经解除")
        await conn.execute(update(legal_holds).where(legal_holds.c.hold_id == hold_id).values(
            released_by=session.who, released_at=at))
        await audit.append(conn, session.who, "qa.hold.release",
                           hold["case_no"] or hold["call_id"] or "", {"hold_id": hold_id},
                           {"hold_id": hold_id, "note": req.note}, at)
    return web.json_response({"hold_id": hold_id, "released": True})


async def list_holds(request: web.Request) -> web.Response:
    await require_session(request, "qa", "admin")
    stmt = select(legal_holds).order_by(legal_holds.c.hold_id.desc()).limit(500)
    if request.query.get("active", "1") != "0":
        stmt = stmt.where(legal_holds.c.released_at.is_(None))
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return web.json_response({"holds": [jsonable(dict(r)) for r in rows]})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/qa/holds", place_hold)
    app.router.add_get("/api/qa/holds", list_holds)
    app.router.add_post("/api/qa/holds/{hold_id}/release", release_hold)

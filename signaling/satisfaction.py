"""好差评: the applicant rates the visit at the kiosk; 不满意 opens a follow-up (回访).

The kiosk posts one rating per call (`POST /api/terminal/rating`), only for a call it was
in; the rating is stored with the call and its case (`ratings`). A 不满意 opens a
follow-up task due `FOLLOWUP_WORKING_DAYS` working days later (holidays and 调休 from the
settings and the admin page, `signaling.work_calendar`); a supervisor, QA or admin closes
it with a note (`POST /api/followups/{id}/close`). Both are audited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.calendar import WorkCalendar
from approval.tables import cases
from core import audit
from core.ops_figures import RATING_WORDS, Rating
from core.ops_tables import followups, ratings
from core.replies import http_error
from core.settings import Settings
from signaling.appkeys import CLOCK, ENGINE, SETTINGS
from signaling.auth import SessionRole, require_session
from signaling.case_http import body, jsonable
from signaling.node import NODE
from signaling.supervisor import VIEW
from signaling.work_calendar import load_calendar

log = logging.getLogger("signaling.satisfaction")

FOLLOWUP_WORKING_DAYS = 2  # a 不满意 is called back within this many working days
REASONS = ("等待时间太长", "工作人员态度不好", "没有讲清楚", "视频或声音不清楚", "材料要求太多",
           "其他")
HANDLERS: tuple[SessionRole, ...] = ("supervisor", "qa", "admin")


class RatingRequest(BaseModel):
    call_id: str = Field(min_length=1, max_length=64)
    rating: Rating
    reasons: list[str] = Field(default_factory=list, max_length=len(REASONS))


class CloseRequest(BaseModel):
    note: str = Field(min_length=2, max_length=2000)


def followup_due(calendar: WorkCalendar, opened: datetime, days: int) -> datetime:
    """The end of the working day `days` working days after `opened` (pure)."""
    due = calendar.add_working_days(opened, days)
    return due.replace(hour=23, minute=59, second=59, microsecond=0)


async def rate(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal")
    req = await body(request, RatingRequest)
    if any(r not in REASONS for r in req.reasons):
        raise http_error(web.HTTPBadRequest, "invalid_request", "不认识的原因")
    call = await request.app[NODE].store.call(req.call_id)
    if call is None or call.terminal_id != session.who:
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话")
    engine = request.app[ENGINE]
    at = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    reasons = req.reasons if req.rating == Rating.DISSATISFIED else []
    async with engine.begin() as conn:
        case_no = (await conn.execute(
            select(cases.c.case_no).where(cases.c.call_id == req.call_id)
            .order_by(cases.c.submitted_at.desc()).limit(1))).scalar_one_or_none()
        row = {"call_id": req.call_id, "case_no": case_no, "terminal_id": session.who,
               "clerk": call.clerk, "item_code": call.item_code, "village": session.village,
               "rating": req.rating.value, "reasons": reasons, "at": at}
        stored = (await conn.execute(insert(ratings).values(**row).on_conflict_do_nothing()
                                     .returning(ratings.c.call_id))).scalar_one_or_none()
        if stored is None:
            raise http_error(web.HTTPConflict, "already_rated", "这次办事已经评价过了，谢谢您")
        await audit.append(conn, session.principal, "rating.give", req.call_id, None,
                           jsonable(row), at)
    followup_id = None
    if req.rating == Rating.DISSATISFIED:
        followup_id = await open_followup(engine, request.app[SETTINGS], req.call_id, case_no,
                                          call.clerk, reasons, at)
    if VIEW in request.app:
        request.app[VIEW].visits_copied(1)  # the boards show it at their next refresh
    log.info("rated", extra={"call": req.call_id, "rating": req.rating.value})
    return web.json_response({"ok": True, "rating": RATING_WORDS[req.rating],
                              "followup_id": followup_id})


async def open_followup(engine: AsyncEngine, settings: Settings, call_id: str,
                        case_no: str | None, clerk: str, reasons: list[str],
                        at: datetime) -> int:
    due = followup_due(await load_calendar(engine, settings), at, FOLLOWUP_WORKING_DAYS)
    row = {"call_id": call_id, "case_no": case_no, "clerk": clerk, "reasons": reasons,
           "opened_at": at, "due_at": due}
    async with engine.begin() as conn:
        fid = int((await conn.execute(insert(followups).values(**row)
                                      .returning(followups.c.followup_id))).scalar_one())
        await audit.append(conn, "system", "followup.open", str(fid), None, jsonable(row), at)
    return fid


def _followup(row: Any, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(dict(row))
    out["overdue"] = row["closed_at"] is None and row["due_at"] < now
    out["rating"] = RATING_WORDS.get(Rating(row["rating"]), "") if row.get("rating") else ""
    return out


async def list_followups(request: web.Request) -> web.Response:
    await require_session(request, *HANDLERS)
    only_open = request.query.get("state", "open") == "open"
    f, r = followups.c, ratings.c
    q = (select(followups, r.rating, r.item_code, r.village)
         .join(ratings, r.call_id == f.call_id, isouter=True)
         .order_by(f.due_at).limit(200))
    if only_open:
        q = q.where(f.closed_at.is_(None))
    now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return web.json_response({"followups": [_followup(row, now) for row in rows]})


async def close_followup(request: web.Request) -> web.Response:
    session = await require_session(request, *HANDLERS)
    req = await body(request, CloseRequest)
    try:
        fid = int(request.match_info["followup_id"])
    except ValueError as exc:
        raise http_error(web.HTTPNotFound, "no_followup", "没有这个回访任务") from exc
    at = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    async with request.app[ENGINE].begin() as conn:
        before = (await conn.execute(select(followups).where(
            followups.c.followup_id == fid).with_for_update())).mappings().first()
        if before is None:
            raise http_error(web.HTTPNotFound, "no_followup", "没有这个回访任务")
        if before["closed_at"] is not None:
            raise http_error(web.HTTPConflict, "followup_closed", "这个回访任务已经关闭")
        after = {"closed_at": at, "closed_by": session.who, "note": req.note}
        await conn.execute(update(followups).where(followups.c.followup_id == fid)
                           .values(**after))
        await audit.append(conn, session.principal, "followup.close", str(fid),
                           jsonable(dict(before)), jsonable(dict(before) | after), at)
    return web.json_response({"ok": True, "on_time": at <= before["due_at"]})


async def rating_config(request: web.Request) -> web.Response:
    await require_session(request, "terminal")
    return web.json_response({"ratings": [{"value": r.value, "words": w}
                                          for r, w in RATING_WORDS.items()],
                              "reasons": list(REASONS), "show_s": 30})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/terminal/rating", rating_config)
    app.router.add_post("/api/terminal/rating", rate)
    app.router.add_get("/api/followups", list_followups)
    app.router.add_post("/api/followups/{followup_id}/close", close_followup)

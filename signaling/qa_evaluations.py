"""Evaluation of a recorded call: a score sheet (items from settings, 0–5 points each) and
comments; per-clerk results month by month."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import audit, records
from core.media_tables import media_calls
from core.qa_tables import qa_evaluations
from core.replies import http_error
from signaling.appkeys import ENGINE, SETTINGS
from signaling.auth import require_session
from signaling.case_http import body, jsonable, now
from signaling.qa_flags_api import CALL_ID
from signaling.qa_recording import case_of_call

MAX_POINTS = 5


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(pattern=CALL_ID)
    scores: dict[str, int] = Field(max_length=32)
    comment: str = Field(default="", max_length=2000)


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = Field(default=None, alias="to")
    clerk: str | None = Field(default=None, max_length=64)


def total_percent(scores: dict[str, int], items: tuple[str, ...]) -> float:
    """The sheet's result as a percentage of the full marks."""
    return round(100.0 * sum(scores[i] for i in items) / (MAX_POINTS * len(items)), 1)


async def evaluate(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin")
    req = await body(request, EvaluationRequest)
    items = request.app[SETTINGS].qa_score_items
    if set(req.scores) != set(items):
        raise http_error(web.HTTPBadRequest, "bad_sheet",
                         "请为每一项打分：" + "、".join(items))
    if any(not 0 <= v <= MAX_POINTS for v in req.scores.values()):
        raise http_error(web.HTTPBadRequest, "bad_score", f"每项得分应在 0 到 {MAX_POINTS} 之间")
    engine = request.app[ENGINE]
    async with engine.connect() as conn:
        clerk = await conn.scalar(select(media_calls.c.clerk_username).where(
            media_calls.c.call_id == req.call_id))
    if clerk is None:
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
    case = await case_of_call(engine, req.call_id)
    case_no = case["case_no"] if case is not None else None
    total = total_percent(req.scores, items)
    at = now()
    async with engine.begin() as conn:
        eval_id = int((await conn.execute(insert(qa_evaluations).values(
            case_no=case_no, call_id=req.call_id, clerk=clerk, evaluator=session.who,
            scores=req.scores, total=total, comment=req.comment, created_at=at,
        ).returning(qa_evaluations.c.id))).scalar_one())
        await audit.append(conn, session.who, "qa.evaluate", case_no or req.call_id, None,
                           {"evaluation_id": eval_id, "call_id": req.call_id, "clerk": clerk,
                            "scores": req.scores, "total": total, "comment": req.comment}, at)
    return web.json_response({"id": eval_id, "total": total, "clerk": clerk}, status=201)


async def clerk_results(engine: AsyncEngine, q: ResultsQuery,
                        items: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per clerk and month: how many sheets, the mean result, the mean of each item."""
    e, a = qa_evaluations, records.accounts
    month = func.to_char(func.date_trunc("month", e.c.created_at), "YYYY-MM")
    where = []
    if q.since:
        where.append(e.c.created_at >= q.since)
    if q.until:
        where.append(e.c.created_at < q.until)
    if q.clerk:
        where.append(e.c.clerk == q.clerk)
    per_item = [func.avg(e.c.scores[i].as_float()).label(f"i{n}") for n, i in enumerate(items)]
    stmt = (select(e.c.clerk, a.c.display_name, month.label("month"),
                   func.count().label("sheets"), func.avg(e.c.total).label("mean"), *per_item)
            .select_from(e.outerjoin(a, a.c.username == e.c.clerk))
            .group_by(e.c.clerk, a.c.display_name, month).order_by(e.c.clerk, month))
    if where:
        stmt = stmt.where(and_(*where))
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [{"clerk": r["clerk"], "clerk_name": r["display_name"] or r["clerk"],
             "month": r["month"], "sheets": int(r["sheets"]),
             "mean": round(float(r["mean"]), 1),
             "items": {i: round(float(r[f"i{n}"] or 0), 2) for n, i in enumerate(items)}}
            for r in rows]


async def results(request: web.Request) -> web.Response:
    await require_session(request, "qa", "admin")
    try:
        q = ResultsQuery.model_validate(dict(request.query))
    except ValueError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "查询条件不正确") from exc
    items = request.app[SETTINGS].qa_score_items
    return web.json_response(jsonable({"items": list(items), "max_points": MAX_POINTS,
                                       "rows": await clerk_results(request.app[ENGINE], q,
                                                                   items)}))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/qa/evaluations", evaluate)
    app.router.add_get("/api/qa/evaluations/clerks", results)

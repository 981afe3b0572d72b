"""问题件 over REST: flag a case or a moment of its recording, move it 标记 → 指派 → 整改 →
复核 → 关闭, list them. Every step is a row (who, when, note) and an audit entry.

QA and admin may flag any case; a reviewer may flag a case they returned (退回补正), from
the reviewer's desk. Only QA and admin move a flag on: 整改 is recorded by QA with what
the person responsible did.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from approval.tables import cases, decisions
from core import audit, records
from core.media_tables import media_calls
from core.qa_flags import (
    OPEN_STATES,
    STATE_NAMES,
    FlagAction,
    FlagRefused,
    FlagState,
    FlagStep,
    advance,
)
from core.qa_tables import qa_flag_steps, qa_flags
from core.replies import http_error
from signaling.appkeys import ENGINE, SETTINGS
from signaling.auth import require_session
from signaling.case_http import CASE_NO, body, jsonable, now

CALL_ID = r"^[A-Za-z0-9_-]{1,64}$"


class FlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_no: str | None = Field(default=None, pattern=CASE_NO.pattern)
    call_id: str | None = Field(default=None, pattern=CALL_ID)
    at_s: float | None = Field(default=None, ge=0, le=24 * 3600)
    category: str = Field(min_length=1, max_length=32)
    note: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _subject(self) -> FlagCreate:
        if not self.case_no and not self.call_id:
            raise ValueError("请指明办件编号或录像")
        return self


class FlagStepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: FlagAction
    note: str = Field(default="", max_length=2000)
    assignee: str | None = Field(default=None, max_length=64)
    passed: bool | None = None


class FlagList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "closed", "all"] = "open"
    case_no: str | None = Field(default=None, pattern=CASE_NO.pattern)
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


def _flag_id(request: web.Request) -> int:
    raw = request.match_info["flag_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise http_error(web.HTTPNotFound, "no_flag", "没有这个问题件")
    return int(raw)


async def _subject(conn: AsyncConnection, req: FlagCreate) -> tuple[str | None, str | None]:
    """(case number, call id) of what is flagged, each checked to exist."""
    case_no, call_id = req.case_no, req.call_id
    if case_no is not None:
        row = (await conn.execute(select(cases.c.call_id).where(cases.c.case_no == case_no))
               ).first()
        if row is None:
            raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
        call_id = call_id or row.call_id
    if call_id is not None:
        if (await conn.execute(select(media_calls.c.call_id).where(
                media_calls.c.call_id == call_id))).first() is None:
            if req.call_id is not None:
                raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
            call_id = None  # the case's call left no recording: flag the case alone
        elif case_no is None:
            case_no = await conn.scalar(select(cases.c.case_no).where(
                cases.c.call_id == call_id).order_by(cases.c.submitted_at.desc()).limit(1))
    return case_no, call_id


async def create_flag(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin", "reviewer")
    req = await body(request, FlagCreate)
    if req.category not in request.app[SETTINGS].qa_flag_categories:
        raise http_error(web.HTTPBadRequest, "bad_category", "问题类别不在清单中")
    at = now()
    async with request.app[ENGINE].begin() as conn:
        case_no, call_id = await _subject(conn, req)
        source = "qa"
        if session.role == "reviewer":
            returned = (await conn.execute(select(decisions.c.id).where(and_(
                decisions.c.case_no == case_no, decisions.c.reviewer == session.who,
                decisions.c.decision == "return")))).first()
            if case_no is None or returned is None:
                raise http_error(web.HTTPForbidden, "not_returned_by_you",
                                 "审批人员只能为自己退回的办件登记问题件")
            source = "review_return"
        flag_id = int((await conn.execute(insert(qa_flags).values(
            case_no=case_no, call_id=call_id, at_s=req.at_s, category=req.category,
            note=req.note, state=FlagState.MARKED.value, source=source,
            created_by=session.who, created_at=at, updated_at=at,
        ).returning(qa_flags.c.flag_id))).scalar_one())
        await conn.execute(insert(qa_flag_steps).values(
            flag_id=flag_id, state=FlagState.MARKED.value, actor=session.who, at=at,
            note=req.note))
        await audit.append(conn, session.who, "qa.flag", case_no or call_id or "", None,
                           {"flag_id": flag_id, "category": req.category, "note": req.note,
                            "call_id": call_id, "at_s": req.at_s, "source": source}, at)
    return web.json_response({"flag_id": flag_id, "state": "marked", "state_name": "标记",
                              "case_no": case_no, "call_id": call_id}, status=201)


async def flag_step(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin")
    flag_id = _flag_id(request)
    req = await body(request, FlagStepRequest)
    at = now()
    async with request.app[ENGINE].begin() as conn:
        flag = (await conn.execute(select(qa_flags).where(qa_flags.c.flag_id == flag_id)
                                   .with_for_update())).mappings().first()
        if flag is None:
            raise http_error(web.HTTPNotFound, "no_flag", "没有这个问题件")
        if req.assignee and (await conn.execute(select(records.accounts.c.username).where(
                records.accounts.c.username == req.assignee))).first() is None:
            raise http_error(web.HTTPBadRequest, "no_account", "没有这个责任人账号")
        try:
            state = advance(FlagState(flag["state"]), FlagStep(req.action, req.note,
                                                               req.assignee, req.passed))
        except FlagRefused as exc:
            raise http_error(web.HTTPConflict, "refused", str(exc)) from exc
        assignee = req.assignee if req.action == "assign" else flag["assignee"]
        await conn.execute(update(qa_flags).where(qa_flags.c.flag_id == flag_id).values(
            state=state.value, assignee=assignee, updated_at=at))
        note = req.note if req.passed is None else (
            f"{'通过' if req.passed else '不通过'}{'：' + req.note if req.note else ''}")
        await conn.execute(insert(qa_flag_steps).values(
            flag_id=flag_id, state=state.value, actor=session.who, at=at, note=note))
        await audit.append(conn, session.who, f"qa.flag.{req.action}",
                           flag["case_no"] or flag["call_id"] or "",
                           {"flag_id": flag_id, "state": flag["state"]},
                           {"flag_id": flag_id, "state": state.value, "assignee": assignee,
                            "note": note}, at)
    return web.json_response({"flag_id": flag_id, "state": state.value,
                              "state_name": STATE_NAMES[state], "assignee": assignee})


async def _with_steps(conn: AsyncConnection, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [r["flag_id"] for r in rows]
    steps = (await conn.execute(select(qa_flag_steps).where(qa_flag_steps.c.flag_id.in_(ids))
                                .order_by(qa_flag_steps.c.id))).mappings().all() if ids else []
    by_flag: dict[int, list[dict[str, Any]]] = {}
    for s in steps:
        by_flag.setdefault(int(s["flag_id"]), []).append(jsonable(
            {**dict(s), "state_name": STATE_NAMES[FlagState(s["state"])]}))
    return [jsonable({**dict(r), "state_name": STATE_NAMES[FlagState(r["state"])],
                      "steps": by_flag.get(int(r["flag_id"]), [])}) for r in rows]


async def flags_for(conn: AsyncConnection, case_no: str | None,
                    call_id: str | None) -> list[dict[str, Any]]:
    keys = [k for k in (case_no, call_id) if k]
    rows = (await conn.execute(select(qa_flags).where(or_(
        qa_flags.c.case_no.in_(keys), qa_flags.c.call_id.in_(keys)))
        .order_by(qa_flags.c.flag_id))).mappings().all()
    return await _with_steps(conn, list(rows))


async def list_flags(request: web.Request) -> web.Response:
    await require_session(request, "qa", "admin")
    try:
        q = FlagList.model_validate(dict(request.query))
    except ValueError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "查询条件不正确") from exc
    where: list[ColumnElement[bool]] = []
    if q.state == "open":
        where.append(qa_flags.c.state.in_(OPEN_STATES))
    elif q.state == "closed":
        where.append(qa_flags.c.state == FlagState.CLOSED.value)
    if q.case_no:
        where.append(qa_flags.c.case_no == q.case_no)
    stmt = select(qa_flags).where(and_(*where)) if where else select(qa_flags)
    async with request.app[ENGINE].connect() as conn:
        total = int(await conn.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = (await conn.execute(stmt.order_by(qa_flags.c.flag_id.desc()).limit(q.per_page)
                                   .offset((q.page - 1) * q.per_page))).mappings().all()
        out = await _with_steps(conn, list(rows))
    return web.json_response({"total": total, "page": q.page, "rows": out})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/qa/flags", create_flag)
    app.router.add_get("/api/qa/flags", list_flags)
    app.router.add_post("/api/qa/flags/{flag_id}/steps", flag_step)

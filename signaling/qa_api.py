"""The QA page's REST routes: search, a call's detail, opening a replay, the watch report,
the access log (admin) and a case's whole history.

Opening a replay: signaling checks the QA user and the purpose, logs the access (and its
audit entry), picks a live media worker and mints a short-lived replay ticket; the page
fetches the stream from that worker with the ticket. The worker renders the recording for
this viewer; the original segments never leave it.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, ValidationError
from sqlalchemy import or_, select

from approval.store import CaseNotFound
from core import records
from core import worker_registry as registry
from core.call_events import CallEventKind
from core.media_tables import media_calls, recording_segments, scans
from core.qa_tables import call_events
from core.replayticket import ReplayClaims, mint
from core.replies import http_error
from signaling.appkeys import ENGINE, REDIS, SETTINGS
from signaling.auth import require_session
from signaling.case_http import case_no_of, jsonable, now, store_of
from signaling.qa_access import (
    AccessFilter,
    Progress,
    PurposeGiven,
    for_subject,
    list_access,
    open_access,
    report_progress,
)
from signaling.qa_flags_api import CALL_ID, flags_for
from signaling.qa_recording import ROLE_NAMES, call_detail, case_of_call, shown_case
from signaling.qa_search import VERDICT_NAMES, SearchQuery, search

ACTION_NAMES = {
    "case.submit": "受理提交", "case.approve": "审批同意", "case.reject": "不予许可",
    "case.return": "退回补正", "case.resubmit": "补正后重新提交", "case.materials": "补齐材料",
    "case.deliver": "证照已打印交付", "case.archive": "归档", "case.tick": "时限到期处理",
    "qa.replay": "回放录像", "qa.replay.end": "结束回放", "qa.download": "下载水印副本",
    "qa.download.end": "结束下载", "qa.export": "导出证据包", "qa.export.archive": "证据包已生成",
    "qa.flag": "登记问题件", "qa.flag.assign": "问题件指派", "qa.flag.rectify": "问题件整改",
    "qa.flag.recheck": "问题件复核", "qa.flag.close": "问题件关闭", "qa.evaluate": "质检评分",
    "qa.hold": "冻结（暂停删除）", "qa.hold.release": "解除冻结",
    "retention.delete": "按保存期限删除",
}


class ReplayRequest(PurposeGiven):
    call_id: str = Field(pattern=CALL_ID)
    kind: Literal["replay", "download"] = "replay"


def _query(request: web.Request, model: type[Any]) -> Any:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise http_error(web.HTTPBadRequest, "invalid_request",
                         f"查询条件不正确：{where}") from exc


async def qa_config(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin", "reviewer")
    settings = request.app[SETTINGS]
    return web.json_response({
        "me": {"who": session.who, "display_name": session.display_name, "role": session.role},
        "score_items": list(settings.qa_score_items), "max_points": 5,
        "flag_categories": list(settings.qa_flag_categories),
        "purposes": ["抽查", "投诉处理", "问题件复核", "其他"],
        "verdicts": VERDICT_NAMES, "retention_days": {
            "recording": settings.retention_recording_days,
            "scan": settings.retention_scan_days, "audit": settings.retention_audit_days}})


async def search_calls(request: web.Request) -> web.Response:
    await require_session(request, "qa", "admin")
    q: SearchQuery = _query(request, SearchQuery)
    return web.json_response(await search(request.app[ENGINE], q, store_of(request).pii))


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not re.match(CALL_ID, call_id):
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
    return call_id


async def call_info(request: web.Request) -> web.Response:
    await require_session(request, "qa", "admin")
    detail = await call_detail(request.app[ENGINE], request.app[SETTINGS],
                               store_of(request), _call_id(request))
    if detail is None:
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
    return web.json_response(detail)


async def _worker_url(request: web.Request) -> str:
    live, _ = await registry.live_workers(request.app[REDIS])
    settings = request.app[SETTINGS]
    chosen = registry.pick_worker(live, settings.media_load_threshold) or registry.pick_worker(
        live, 1.0)
    if chosen is None:
        raise http_error(web.HTTPServiceUnavailable, "no_worker",
                         "暂无可用的媒体服务，无法回放，请稍后再试")
    return chosen.url


async def start_replay(request: web.Request) -> web.Response:
    """Purpose given → access logged → a ticket for one viewing on a live worker."""
    session = await require_session(request, "qa", "admin")
    try:
        req = ReplayRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise http_error(web.HTTPBadRequest, "invalid_request", f"请求不正确：{msg}") from exc
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    async with engine.connect() as conn:
        call = (await conn.execute(select(media_calls.c.call_id).where(
            media_calls.c.call_id == req.call_id))).first()
        has_segments = (await conn.execute(select(recording_segments.c.id).where(
            recording_segments.c.call_id == req.call_id).limit(1))).first()
    if call is None:
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的录像")
    if has_segments is None:
        raise http_error(web.HTTPGone, "no_recording", "这次通话的录像已不存在（或从未录制）")
    worker = await _worker_url(request)
    case = await case_of_call(engine, req.call_id)
    given = PurposeGiven(purpose=req.purpose, purpose_text=req.purpose_text)
    access_id = await open_access(engine, session, req.kind,
                                  case["case_no"] if case is not None else None, req.call_id,
                                  given, now())
    ticket = mint(settings.join_token_secret, ReplayClaims(
        call_id=req.call_id, access_id=access_id, viewer=session.who,
        viewer_name=session.display_name, kind=req.kind,
        expires_at=time.time() + settings.qa_replay_ticket_ttl_s))
    return web.json_response({"access_id": access_id, "ticket": ticket,
                              "stream_url": f"{worker}/replay/stream",
                              "expires_in_s": settings.qa_replay_ticket_ttl_s}, status=201)


async def replay_progress(request: web.Request) -> web.Response:
    session = await require_session(request, "qa", "admin")
    raw = request.match_info["access_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise http_error(web.HTTPNotFound, "no_access", "没有这次回放")
    try:
        report = Progress.model_validate_json(await request.read())
    except ValidationError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "请求格式不正确") from exc
    if not await report_progress(request.app[ENGINE], int(raw), session.who, report, now()):
        raise http_error(web.HTTPNotFound, "no_access", "没有这次回放")
    return web.json_response({"ok": True})


async def access_log(request: web.Request) -> web.Response:
    await require_session(request, "admin")
    f: AccessFilter = _query(request, AccessFilter)
    return web.json_response(await list_access(request.app[ENGINE], f))


def _entry(at: Any, kind: str, label: str, actor: str = "", **detail: Any) -> dict[str, Any]:
    return {"at": at.isoformat() if at is not None else None, "kind": kind, "label": label,
            "actor": actor, **detail}


async def case_history(request: web.Request) -> web.Response:
    """From a case number: every step of the case, every replay, every change, in order."""
    await require_session(request, "qa", "admin")
    case_no = case_no_of(request)
    engine = request.app[ENGINE]
    try:
        detail = await store_of(request).get(case_no)
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    case = detail["case"]
    call_id = case["call_id"]
    subjects = [s for s in (case_no, call_id) if s]
    a = records.audit_log
    async with engine.connect() as conn:
        entries = (await conn.execute(select(a).where(a.c.subject.in_(subjects))
                                      .order_by(a.c.id))).mappings().all()
        events = (await conn.execute(select(call_events).where(
            call_events.c.call_id == call_id).order_by(call_events.c.at))).mappings().all() \
            if call_id else []
        call = (await conn.execute(select(media_calls).where(
            media_calls.c.call_id == call_id))).mappings().first() if call_id else None
        shots = (await conn.execute(select(scans.c.scan_id, scans.c.created_at, scans.c.taken_by)
                                    .where(or_(scans.c.call_id == call_id,
                                               scans.c.scan_id.in_(list(case["scans"])))))
                 ).mappings().all()
        flags = await flags_for(conn, case_no, call_id)
    out: list[dict[str, Any]] = []
    if call is not None:
        out.append(_entry(call["started_at"], "call", "视频通话开始", call["clerk_username"],
                          call_id=call_id))
        if call["ended_at"] is not None:
            out.append(_entry(call["ended_at"], "call", "视频通话结束", "",
                              reason=call["end_reason"]))
    for e in events:
        if e["kind"] in (CallEventKind.JOINED, CallEventKind.LEFT):
            verb = "加入通话" if e["kind"] == CallEventKind.JOINED else "离开通话"
            out.append(_entry(e["at"], "call", f"{ROLE_NAMES.get(e['actor'], e['actor'])}{verb}"))
        else:
            out.append(_entry(e["at"], "call", str(e["kind"])))
    for s in shots:
        out.append(_entry(s["created_at"], "capture", "拍摄材料", s["taken_by"],
                          scan_id=s["scan_id"]))
    for e in entries:
        out.append(_entry(e["at"], "audit", ACTION_NAMES.get(e["action"], e["action"]),
                          e["actor"], action=e["action"], before=e["before"], after=e["after"],
                          entry_id=e["id"], entry_hash=e["entry_hash"]))
    accesses = await for_subject(engine, case_no, call_id)
    out.sort(key=lambda x: (x["at"] or "", x.get("entry_id", 0)))
    return web.json_response(jsonable({
        "case": shown_case(case), "steps": detail["steps"],
        "decisions": detail["decisions"], "flags": flags, "accesses": accesses,
        "events": out}))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/qa/config", qa_config)
    app.router.add_get("/api/qa/calls", search_calls)
    app.router.add_get("/api/qa/calls/{call_id}", call_info)
    app.router.add_post("/api/qa/replays", start_replay)
    app.router.add_post("/api/qa/replays/{access_id}/progress", replay_progress)
    app.router.add_get("/api/qa/access", access_log)
    app.router.add_get("/api/qa/cases/{case_no}/history", case_history)

"""REST API of cases and the approval queue, certificates and the public check page.

Clerks submit cases, reviewers take and decide tasks, terminals fetch and print the
certificate, and anyone can check a certificate at `/verify/{certificate}`.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from redis.exceptions import RedisError

from approval import effects, streams
from approval import workflow as wf
from approval.certificate import render_pdf
from approval.messages import CaseSubmitted
from approval.store import CaseNotFound, CaseRefused, CaseStore, CaseSubmission
from approval.tables import terminals_exists
from approval.worker import make_store, sweep_forever
from core import keys
from signaling.appkeys import ENGINE, REDIS, SETTINGS
from signaling.auth import Session, require_session
from signaling.errors import http_error
from signaling.fanout import publish, terminal_target
from verify.idnumber import check_id_number

log = logging.getLogger("signaling.cases_api")
_STORE = web.AppKey("approval_store", dict)
_CASE_NO = re.compile(r"^[0-9]{8}-[0-9A-F]{8}$")
_CERT_NO = re.compile(r"^E[0-9]{8}[0-9A-F]{10}$")
Verdict = Literal["valid", "revoked", "forged"]


class DecisionRequest(BaseModel):
    case_no: str = Field(pattern=_CASE_NO.pattern)
    seq: int = Field(ge=1, le=1000)
    group: str = Field(min_length=1, max_length=64)
    decision: wf.Decision
    comment: str = Field(default="", max_length=2000)
    message_id: str | None = Field(default=None, pattern=r"^[0-9]+-[0-9]+$")


class MaterialsRequest(BaseModel):
    names: list[str] = Field(min_length=1, max_length=50)


def _now() -> datetime:
    return datetime.now(UTC)


def store_of(request: web.Request) -> CaseStore:
    holder: dict[str, CaseStore] = request.app[_STORE]
    if "store" not in holder:  # built on first use: the engine is set up at app start
        holder["store"] = make_store(request.app[ENGINE], request.app[SETTINGS])
    return holder["store"]


async def _body(request: web.Request, model: type[Any]) -> Any:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise http_error(web.HTTPBadRequest, "invalid_request",
                         f"请求格式不正确：{where} {first['msg']}") from exc


def _case_no(request: web.Request) -> str:
    case_no = request.match_info["case_no"]
    if not _CASE_NO.match(case_no):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    return case_no


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()
                                 if isinstance(v, datetime | date) else str(v)))


async def _done(request: web.Request, change: Any) -> None:
    try:
        await effects.carry_out(request.app[REDIS], change, request.app[SETTINGS].base_url)
    except RedisError as exc:
        # The change is committed in PostgreSQL; the sweep re-enqueues its open tasks.
        log.warning("approval effects deferred to the sweep: %s", exc,
                    extra={"case_no": change.case_no})


# --- clerk ------------------------------------------------------------------------------


async def submit_case(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    sub: CaseSubmission = await _body(request, CaseSubmission)
    checked = check_id_number(sub.id_number, _now().date())
    if not checked.valid:
        raise http_error(web.HTTPBadRequest, "bad_id_number", checked.reason)
    sub = sub.model_copy(update={"id_number": checked.normalized})
    store = store_of(request)
    if not await terminals_exists(store.engine, sub.terminal_id):
        raise http_error(web.HTTPBadRequest, "no_terminal", "终端未登记")
    try:
        change = await store.create(sub, session.who, _now())
    except CaseRefused as exc:
        raise http_error(web.HTTPUnprocessableEntity, "refused", str(exc)) from exc
    await _done(request, change)
    await _tell_terminal(request, sub, change.case_no)
    return web.json_response({"case_no": change.case_no, "status": change.state.status,
                              "status_name": wf.STATUS_NAMES[change.state.status]},
                             status=201)


async def _tell_terminal(request: web.Request, sub: CaseSubmission, case_no: str) -> None:
    """The kiosk's last screen: the outcome and a slip; lossy, the case itself is stored."""
    from signaling.service import SERVICE  # the service module imports this one's peers

    svc = request.app.get(SERVICE)
    item = svc.items.get(sub.item_code) if svc is not None else None
    msg = CaseSubmitted(
        case_no=case_no, item_name=item.name if item is not None else sub.item_code,
        outcome=sub.outcome, missing_materials=list(sub.materials_missing),
        promise_date=sub.promise_date.isoformat() if sub.promise_date else None,
        date=_now().astimezone().date().isoformat(), qr_url=f"/api/cases/{case_no}/qr.svg")
    try:
        await publish(request.app[REDIS], terminal_target(sub.terminal_id), msg)
    except RedisError as exc:
        log.warning("case_submitted not delivered: %s", exc, extra={"case_no": case_no})


async def case_qr(request: web.Request) -> web.Response:
    """The slip's QR code (SVG, drawn here so the kiosk loads nothing from outside)."""
    await require_session(request, "terminal", "clerk")
    case_no = _case_no(request)
    svg = await asyncio.to_thread(_qr_svg, case_no)
    return web.Response(body=svg, content_type="image/svg+xml",
                        headers={"Cache-Control": "private, max-age=3600"})


def _qr_svg(text: str) -> bytes:
    import io

    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10).save(out)
    return out.getvalue()


async def my_cases(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    return web.json_response({"cases": await store_of(request).by_clerk(session.who)})


async def resubmit_case(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    return await _transition(request, store_of(request).resubmit(
        _case_no(request), session.who, _now()))


async def materials_arrived(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    body: MaterialsRequest = await _body(request, MaterialsRequest)
    return await _transition(request, store_of(request).materials_arrived(
        _case_no(request), session.who, body.names, _now()))


async def _transition(request: web.Request, pending: Any) -> web.Response:
    try:
        change = await pending
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    except CaseRefused as exc:
        raise http_error(web.HTTPConflict, "refused", str(exc)) from exc
    await _done(request, change)
    return web.json_response({"case_no": change.case_no, "status": change.state.status,
                              "status_name": wf.STATUS_NAMES[change.state.status],
                              "certificate_no": change.state.certificate_no})


# --- everyone who may see a case ---------------------------------------------------------


async def case_detail(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin", "terminal")
    try:
        detail = await store_of(request).get(_case_no(request))
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    case = detail["case"]
    if session.role == "terminal" and case["terminal_id"] != session.who:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    state = wf.CaseState.model_validate(case.pop("state"))
    if session.role == "reviewer" and not {g for st in state.plan for g in st.groups} & set(
            session.review_groups):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")  # not a matter of theirs
    out = _jsonable(detail)
    out["case"]["status_name"] = wf.STATUS_NAMES[state.status]
    out["case"]["certificate_no"] = state.certificate_no
    out["case"]["working_seconds"] = wf.working_seconds_open(state, _now())
    out["case"]["recording_url"] = f"/qa/#call={case['call_id']}" if case["call_id"] else None
    out["case"]["scan_urls"] = [f"/api/scans/{s}" for s in case["scans"]]
    run = state.current
    out["current"] = None if run is None else {
        "seq": run.seq, "level": run.level, "mode": run.mode,
        "open_groups": run.open_groups(), "due_at": run.due_at.isoformat(),
        "overdue": run.due_at < _now()}
    if session.role == "terminal":  # the terminal shows the result, not the review file
        out = {"case": {k: out["case"][k] for k in ("case_no", "item_name", "status",
                                                     "status_name", "certificate_no")}}
    return web.json_response(out)


# --- reviewer ---------------------------------------------------------------------------


async def _reviewer(request: web.Request) -> Session:
    session = await require_session(request, "reviewer")
    await streams.mark_online(request.app[REDIS], session.who, session.review_groups,
                              request.app[SETTINGS].reviewer_online_ttl_s)
    return session


async def reviewer_queue(request: web.Request) -> web.Response:
    """My tasks (held in the streams) and what waits in my groups (from PostgreSQL)."""
    session = await _reviewer(request)
    redis = request.app[REDIS]
    held = []
    for g in session.review_groups:
        for task in await streams.held_by(redis, g, session.who, count=100):
            if await streams.is_queued(redis, task):
                held.append(task.to_json())
            else:  # decided by someone else, or the step ended: nothing left to do
                await streams.ack(redis, task)
    waiting = await store_of(request).queue(session.review_groups)
    return web.json_response({"reviewer": session.who, "display_name": session.display_name,
                              "groups": session.review_groups, "held": held,
                              "waiting": waiting})


async def _held(redis: Any, groups: list[str], reviewer: str) -> streams.Task | None:
    """Work already assigned to me (办件随机分配) comes before new work."""
    for g in groups:
        mine = await streams.held_by(redis, g, reviewer, count=1)
        if mine:
            return mine[0]
    return None


async def reviewer_claim(request: web.Request) -> web.Response:
    session = await _reviewer(request)
    redis = request.app[REDIS]
    task = await _held(redis, session.review_groups, session.who)
    if task is None:
        task = await streams.claim(redis, session.review_groups, session.who)
    if task is None:  # the sweep may have just handed new work to me
        task = await _held(redis, session.review_groups, session.who)
    return web.json_response({"task": None if task is None else task.to_json()})


async def reviewer_decide(request: web.Request) -> web.Response:
    session = await _reviewer(request)
    body: DecisionRequest = await _body(request, DecisionRequest)
    if body.group not in session.review_groups:
        raise http_error(web.HTTPForbidden, "not_your_group", "您不属于该审查部门")
    store = store_of(request)
    try:
        change = await store.decide(body.case_no, body.seq, body.group, session.who,
                                    body.decision, body.comment, _now())
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    except CaseRefused as exc:
        raise http_error(web.HTTPBadRequest, "refused", str(exc)) from exc
    if change.applied == "stale":
        raise http_error(web.HTTPConflict, "stale", "该环节已结束或已由他人处理")
    await _done(request, change)
    redis = request.app[REDIS]
    task_ref = streams.task_id(body.case_no, body.seq, body.group)
    task = await streams.find(redis, body.group, body.message_id) if body.message_id else None
    if task is not None and task.task_id == task_ref:
        await streams.ack(redis, task)
    else:  # decided without claiming: holders find the task stale and drop it
        await redis.srem(keys.approval_queued(), task_ref)
    return web.json_response({"case_no": body.case_no, "status": change.state.status,
                              "status_name": wf.STATUS_NAMES[change.state.status],
                              "certificate_no": change.state.certificate_no,
                              "applied": change.applied})


async def approval_figures(request: web.Request) -> web.Response:
    """Counters, overdue steps (red on the supervisor page) and dead letters."""
    await require_session(request, "reviewer", "qa", "admin")
    redis = request.app[REDIS]
    overdue = await redis.zrange(keys.approval_overdue(), 0, 99)
    day_ago = datetime.fromtimestamp(_now().timestamp() - 86400, UTC)
    return web.json_response({
        "steps_last_24h": await store_of(request).step_figures(day_ago),
        "counters": await redis.hgetall(keys.approval_figures()),
        "overdue": overdue, "overdue_count": await redis.zcard(keys.approval_overdue()),
        "dead_letters": await redis.llen(keys.approval_dead()),
        "queued": await redis.scard(keys.approval_queued())})


async def dead_letters(request: web.Request) -> web.Response:
    """Tasks that failed too often, newest first, for an administrator to look into."""
    await require_session(request, "admin")
    raw = await request.app[REDIS].lrange(keys.approval_dead(), 0, 199)
    return web.json_response({"dead_letters": [json.loads(r) for r in raw]})


async def terminal_cases(request: web.Request) -> web.Response:
    """A terminal's recent cases: the snapshot a reconnecting kiosk shows and prints from."""
    session = await require_session(request, "terminal")
    settings = request.app[SETTINGS]
    rows = await store_of(request).by_terminal(session.who)
    for r in rows:
        r["status_name"] = wf.STATUS_NAMES[r["status"]]
        number = r["certificate_no"]
        r["certificate_url"] = effects.certificate_url(settings.base_url, number) \
            if number else None
    return web.json_response({"cases": rows})


class RevokeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


async def revoke_certificate(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    body: RevokeRequest = await _body(request, RevokeRequest)
    row = await _certificate(request)
    await store_of(request).revoke(row["certificate_no"], session.who, body.reason, _now())
    return web.json_response({"certificate_no": row["certificate_no"], "revoked": True})


# --- certificates -----------------------------------------------------------------------


async def _certificate(request: web.Request) -> dict[str, Any]:
    number = request.match_info["certificate"]
    row = await store_of(request).certificate(number) if _CERT_NO.match(number) else None
    if row is None:
        raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    return row


async def certificate_pdf(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal", "clerk", "reviewer", "qa", "admin")
    row = await _certificate(request)
    fields = json.loads(row["content"])
    if session.role == "terminal":
        detail = await store_of(request).get(row["case_no"])
        if detail["case"]["terminal_id"] != session.who:
            raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    settings = request.app[SETTINGS]
    url = f"{settings.base_url}/verify/{row['certificate_no']}?s={row['signature'][:16]}"
    note = "本证照已撤销" if row["revoked_at"] else ""
    # Font subsetting takes a few hundred ms of CPU: keep it off the event loop.
    pdf = await asyncio.to_thread(render_pdf, fields, row["signature"], url,
                                  settings.certificate_font, note)
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{row["certificate_no"]}.pdf"'})


async def certificate_printed(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal")
    row = await _certificate(request)
    detail = await store_of(request).get(row["case_no"])
    if detail["case"]["terminal_id"] != session.who:
        raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    return await _transition(request, store_of(request).deliver(row["case_no"], session.who,
                                                                _now()))


def verdict(row: dict[str, Any] | None, store: CaseStore, presented: str | None) -> Verdict:
    """Valid only if the stored content still carries a good seal and matches the QR."""
    if row is None:
        return "forged"
    if not store.seal.check(row["content"], row["signature"], row["key_id"]):
        return "forged"
    if presented and not row["signature"].startswith(presented):
        return "forged"
    return "revoked" if row["revoked_at"] else "valid"


async def check_certificate(request: web.Request) -> tuple[Verdict, dict[str, Any] | None]:
    number = request.match_info["certificate"]
    store = store_of(request)
    row = await store.certificate(number) if _CERT_NO.match(number) else None
    return verdict(row, store, request.query.get("s")), row


async def verify_json(request: web.Request) -> web.Response:
    result, row = await check_certificate(request)
    fields = json.loads(row["content"]) if row and result != "forged" else None
    return web.json_response({"verdict": result, "certificate": fields})


_VERDICT_TEXT = {"valid": ("有效", "该证照由签发机关电子签章，内容未被篡改。", "#1a7f37"),
                 "revoked": ("已撤销", "该证照曾经签发，现已被撤销，不再有效。", "#b35900"),
                 "forged": ("无效（疑似伪造）", "未找到该证照，或其内容与电子签章不符。",
                            "#c81010")}


async def verify_page(request: web.Request) -> web.Response:
    """The public page the QR code opens: valid, revoked or forged, in plain words."""
    result, row = await check_certificate(request)
    title, text, color = _VERDICT_TEXT[result]
    rows = ""
    if row is not None and result != "forged":
        f = json.loads(row["content"])
        for label, key in (("证照编号", "certificate_no"), ("事项", "item_name"),
                           ("申请人", "applicant"), ("身份证号", "id_number"),
                           ("签发机关", "issuer"), ("签发时间", "issued_at")):
            rows += f"<tr><th>{label}</th><td>{html.escape(str(f[key]))}</td></tr>"
    body = (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>证照核验</title></head><body style='font-family:sans-serif;margin:2em'>"
            f"<h1>证照核验结果：<span id='verdict' data-verdict='{result}' "
            f"style='color:{color}'>{title}</span></h1><p>{text}</p>"
            f"<table>{rows}</table></body></html>")
    return web.Response(text=body, content_type="text/html", charset="utf-8")


async def _approval_sweep(app: web.Application) -> AsyncIterator[None]:
    """Runs the approval sweep in the signaling app too (one node at a time, by a lock)."""
    holder: dict[str, CaseStore] = app[_STORE]
    holder.setdefault("store", make_store(app[ENGINE], app[SETTINGS]))
    stop = asyncio.Event()
    task = asyncio.create_task(sweep_forever(app[REDIS], holder["store"], app[SETTINGS], stop))
    try:
        yield
    finally:
        stop.set()
        await task


def setup_routes(app: web.Application, *, sweep: bool = True) -> None:
    """Routes of cases and approval; `sweep` also runs the approval sweep in this app."""
    app[_STORE] = {}
    if sweep:
        app.cleanup_ctx.append(_approval_sweep)
    app.router.add_post("/api/cases", submit_case)
    app.router.add_get("/api/cases", my_cases)
    app.router.add_get("/api/cases/{case_no}", case_detail)
    app.router.add_get("/api/cases/{case_no}/qr.svg", case_qr)
    app.router.add_post("/api/cases/{case_no}/resubmit", resubmit_case)
    app.router.add_post("/api/cases/{case_no}/materials", materials_arrived)
    app.router.add_get("/api/reviewer/queue", reviewer_queue)
    app.router.add_post("/api/reviewer/claim", reviewer_claim)
    app.router.add_post("/api/reviewer/decide", reviewer_decide)
    app.router.add_get("/api/approval/figures", approval_figures)
    app.router.add_get("/api/approval/dead", dead_letters)
    app.router.add_get("/api/terminal/cases", terminal_cases)
    app.router.add_post("/api/certificates/{certificate}/revoke", revoke_certificate)
    app.router.add_get("/api/certificates/{certificate}.pdf", certificate_pdf)
    app.router.add_post("/api/certificates/{certificate}/printed", certificate_printed)
    app.router.add_get("/api/verify/{certificate}", verify_json)
    app.router.add_get("/verify/{certificate}", verify_page)

"""Cases over REST: the clerk submits and follows them, anyone entitled reads one, the
terminal lists its own and shows the slip's QR code."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from approval import workflow as wf
from approval.messages import CaseSubmitted
from approval.store import CaseNotFound, CaseRefused, CaseSubmission
from approval.tables import terminals_exists
from core.fanout import publish, terminal_target
from core.replies import http_error
from signaling.appkeys import ENGINE, REDIS
from signaling.audit_trail import note
from signaling.auth import Session, require_session
from signaling.case_access import (
    PURPOSE_MAX,
    CaseFacts,
    View,
    case_view,
    masked,
    may_change,
    may_see_scans,
    needs_purpose,
)
from signaling.case_binding import CaseBindingError, bind
from signaling.case_http import (
    body,
    carry_out,
    case_no_of,
    jsonable,
    now,
    store_of,
    transition,
)
from signaling.identity_binding import bound_verification
from signaling.kiosk_certificates import slip_text
from verify.idnumber import check_id_number

log = logging.getLogger("signaling.cases_api")


class MaterialsArrived(BaseModel):
    """Materials promised under 容缺 that the applicant has now brought."""

    names: list[str] = Field(min_length=1, max_length=50)


async def submit_case(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    sub = await body(request, CaseSubmission)
    checked = check_id_number(sub.id_number, now().date())
    if not checked.valid:
        raise http_error(web.HTTPBadRequest, "bad_id_number", checked.reason)
    sub = sub.model_copy(update={"id_number": checked.normalized})
    store = store_of(request)
    if not await terminals_exists(store.engine, sub.terminal_id):
        raise http_error(web.HTTPBadRequest, "no_terminal", "终端未登记")
    try:
        call_clerks = await bind(request.app[REDIS], store.engine, sub, session.who)
        sub = sub.model_copy(update={"verification": await bound_verification(
            store.engine, store.pii, sub, session.who)})
    except CaseBindingError as exc:
        raise http_error(web.HTTPUnprocessableEntity, exc.code, exc.message) from exc
    try:
        change = await store.create(sub, session.who, now(), call_clerks)
    except CaseRefused as exc:
        raise http_error(web.HTTPUnprocessableEntity, "refused", str(exc)) from exc
    await carry_out(request, change)
    await _tell_terminal(request, sub, change.case_no, change.item_name)
    return web.json_response({"case_no": change.case_no, "status": change.state.status,
                              "status_name": wf.STATUS_NAMES[change.state.status]},
                             status=201)


async def _tell_terminal(request: web.Request, sub: CaseSubmission, case_no: str,
                         item_name: str) -> None:
    """The kiosk's last screen: the outcome and a slip; lossy, the case itself is stored."""
    msg = CaseSubmitted(
        case_no=case_no, item_name=item_name, outcome=sub.outcome,
        missing_materials=list(sub.materials_missing),
        promise_date=sub.promise_date.isoformat() if sub.promise_date else None,
        date=now().astimezone().date().isoformat(), qr_url=f"/api/cases/{case_no}/qr.svg")
    try:
        await publish(request.app[REDIS], terminal_target(sub.terminal_id), msg)
    except RedisError as exc:
        log.warning("case_submitted not delivered", extra={"case_no": case_no,
                                                           "error": repr(exc)})


SLIP_QR_S = 3600  # a kiosk draws the slip's QR code right after the visit, not later


async def case_qr(request: web.Request) -> web.Response:
    """The slip's QR code (SVG, drawn here so the kiosk loads nothing from outside): the case
    number and its slip code, the proof that opens the certificate at the kiosk later."""
    session = await require_session(request, "terminal", "clerk")
    case, view = await readable_case(request, session)
    fresh = (now() - case["submitted_at"]).total_seconds() < SLIP_QR_S
    if view == "none" or (session.role == "terminal" and not fresh):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    text = slip_text(store_of(request).pii, case["case_no"])
    svg = await asyncio.to_thread(_qr_svg, text)
    return web.Response(body=svg, content_type="image/svg+xml",
                        headers={"Cache-Control": "private, max-age=3600"})


def _qr_svg(text: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10).save(out)
    return out.getvalue()


async def my_cases(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    return web.json_response({"cases": await store_of(request).by_clerk(session.who)})


async def readable_case(request: web.Request, session: Session
                        ) -> tuple[dict[str, Any], View]:
    """The case (PII opened) and how much of it the caller may see; 404 when nothing."""
    try:
        detail = await store_of(request).get(case_no_of(request))
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    case = detail["case"]
    plan = wf.CaseState.model_validate(case["state"]).plan
    view = case_view(session, CaseFacts.of(case, {g for st in plan for g in st.groups}))
    if view == "none":  # not a matter of theirs: as if it did not exist
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    return {**case, "_detail": detail}, view


async def _own_case(request: web.Request) -> Session:
    session = await require_session(request, "clerk")
    case, _ = await readable_case(request, session)
    plan = wf.CaseState.model_validate(case["state"]).plan
    if not may_change(session, CaseFacts.of(case, {g for st in plan for g in st.groups})):
        raise http_error(web.HTTPForbidden, "not_your_case", "只有受理这件事的工作人员可以修改")
    return session


async def resubmit_case(request: web.Request) -> web.Response:
    session = await _own_case(request)
    return await transition(request, store_of(request).resubmit(
        case_no_of(request), session.who, now()))


async def materials_arrived(request: web.Request) -> web.Response:
    session = await _own_case(request)
    names: MaterialsArrived = await body(request, MaterialsArrived)
    return await transition(request, store_of(request).materials_arrived(
        case_no_of(request), session.who, names.names, now()))


def purpose_of(request: web.Request, session: Session) -> str:
    """QA's stated purpose for opening a person's file (required, logged)."""
    purpose = request.query.get("purpose", "").strip()
    if needs_purpose(session) and not 2 <= len(purpose) <= PURPOSE_MAX:
        raise http_error(web.HTTPBadRequest, "purpose_required", "请说明查阅目的（2 到 100 字）")
    return purpose[:PURPOSE_MAX]


async def case_detail(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin", "terminal")
    purpose = purpose_of(request, session)
    case, view = await readable_case(request, session)
    detail = case.pop("_detail")
    if view == "masked":
        detail["case"] = masked(detail["case"])
    elif view == "whole":
        await note(request.app[ENGINE], session.who, "case.read", case["case_no"],
                   {"role": session.role, "purpose": purpose})
    case = detail["case"]
    case.pop("id_number_hash", None)  # the search key stays on the server
    state = wf.CaseState.model_validate(case.pop("state"))
    out = jsonable(detail)
    out["case"]["status_name"] = wf.STATUS_NAMES[state.status]
    out["case"]["certificate_no"] = state.certificate_no
    out["case"]["working_seconds"] = wf.working_seconds_open(state, now())
    out["case"]["recording_url"] = f"/qa/#call={case['call_id']}" if case["call_id"] else None
    suffix = f"?purpose={quote(purpose)}" if purpose else ""
    out["case"]["scan_urls"] = [f"/api/scans/{s}{suffix}" for s in case["scans"]] \
        if may_see_scans(session, view) else []
    run = state.current
    out["current"] = None if run is None else {
        "seq": run.seq, "level": run.level, "mode": run.mode,
        "open_groups": run.open_groups(), "due_at": run.due_at.isoformat(),
        "overdue": run.due_at < now()}
    if session.role == "terminal":  # the terminal shows the result, not the review file
        out = {"case": {k: out["case"][k] for k in ("case_no", "item_name", "status",
                                                     "status_name", "certificate_no")}}
    return web.json_response(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/cases", submit_case)
    app.router.add_get("/api/cases", my_cases)
    app.router.add_get("/api/cases/{case_no}", case_detail)
    app.router.add_get("/api/cases/{case_no}/qr.svg", case_qr)
    app.router.add_post("/api/cases/{case_no}/resubmit", resubmit_case)
    app.router.add_post("/api/cases/{case_no}/materials", materials_arrived)

"""Cases over REST: the clerk submits and follows them, anyone entitled reads one, the
terminal lists its own and shows the slip's QR code."""

from __future__ import annotations

import asyncio
import io
import logging

from aiohttp import web
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from approval import effects
from approval import workflow as wf
from approval.messages import CaseSubmitted
from approval.store import CaseNotFound, CaseRefused, CaseSubmission
from approval.tables import terminals_exists
from core.fanout import publish, terminal_target
from core.replies import http_error
from signaling.appkeys import REDIS, SETTINGS
from signaling.auth import require_session
from signaling.case_http import (
    body,
    carry_out,
    case_no_of,
    jsonable,
    now,
    store_of,
    transition,
)
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
        change = await store.create(sub, session.who, now())
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


async def case_qr(request: web.Request) -> web.Response:
    """The slip's QR code (SVG, drawn here so the kiosk loads nothing from outside)."""
    await require_session(request, "terminal", "clerk")
    svg = await asyncio.to_thread(_qr_svg, case_no_of(request))
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


async def resubmit_case(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    return await transition(request, store_of(request).resubmit(
        case_no_of(request), session.who, now()))


async def materials_arrived(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    names: MaterialsArrived = await body(request, MaterialsArrived)
    return await transition(request, store_of(request).materials_arrived(
        case_no_of(request), session.who, names.names, now()))


async def case_detail(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin", "terminal")
    try:
        detail = await store_of(request).get(case_no_of(request))
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    case = detail["case"]
    if session.role == "terminal" and case["terminal_id"] != session.who:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    state = wf.CaseState.model_validate(case.pop("state"))
    if session.role == "reviewer" and not {g for st in state.plan for g in st.groups} & set(
            session.review_groups):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")  # not a matter of theirs
    out = jsonable(detail)
    out["case"]["status_name"] = wf.STATUS_NAMES[state.status]
    out["case"]["certificate_no"] = state.certificate_no
    out["case"]["working_seconds"] = wf.working_seconds_open(state, now())
    out["case"]["recording_url"] = f"/qa/#call={case['call_id']}" if case["call_id"] else None
    out["case"]["scan_urls"] = [f"/api/scans/{s}" for s in case["scans"]]
    run = state.current
    out["current"] = None if run is None else {
        "seq": run.seq, "level": run.level, "mode": run.mode,
        "open_groups": run.open_groups(), "due_at": run.due_at.isoformat(),
        "overdue": run.due_at < now()}
    if session.role == "terminal":  # the terminal shows the result, not the review file
        out = {"case": {k: out["case"][k] for k in ("case_no", "item_name", "status",
                                                     "status_name", "certificate_no")}}
    return web.json_response(out)


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


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/cases", submit_case)
    app.router.add_get("/api/cases", my_cases)
    app.router.add_get("/api/cases/{case_no}", case_detail)
    app.router.add_get("/api/cases/{case_no}/qr.svg", case_qr)
    app.router.add_post("/api/cases/{case_no}/resubmit", resubmit_case)
    app.router.add_post("/api/cases/{case_no}/materials", materials_arrived)
    app.router.add_get("/api/terminal/cases", terminal_cases)

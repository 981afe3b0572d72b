"""Who may call what: every HTTP route and every WebSocket message, in one table.

The middleware refuses a request whose route is not in the table (fail closed), answers
401 without a session and 403 for a role not listed, before any handler runs. Handlers
then check the objects (a terminal sees only its own cases, a reviewer its groups').
`tests/signaling/test_policy.py` walks the app's router against this table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from core.replies import http_error
from signaling.auth import SessionRole, current_session

Everyone = Literal["public"]  # no session needed
PUBLIC: Everyone = "public"
ANY: frozenset[SessionRole] = frozenset({"terminal", "clerk", "reviewer", "qa", "admin",
                                         "supervisor"})
STAFF: frozenset[SessionRole] = frozenset({"clerk", "reviewer", "qa", "admin"})
Allowed = frozenset[SessionRole] | Everyone


def _roles(*roles: SessionRole) -> frozenset[SessionRole]:
    return frozenset(roles)


QA = _roles("qa", "admin")


# (method, route path as registered) → who may call it. HEAD follows GET.
ROUTES: dict[tuple[str, str], Allowed] = {
    # pages and their files: the login happens inside them
    ("GET", "/"): PUBLIC,
    ("GET", "/terminal/"): PUBLIC,
    ("GET", "/clerk/"): PUBLIC,
    ("GET", "/reviewer/"): PUBLIC,
    ("GET", "/qa/"): PUBLIC,
    ("GET", "/web/{filename}"): PUBLIC,
    # sessions
    ("POST", "/api/login"): PUBLIC,
    ("POST", "/api/logout"): PUBLIC,
    ("POST", "/api/terminal/session"): PUBLIC,
    ("POST", "/api/terminal/enrol"): PUBLIC,
    ("GET", "/api/me"): ANY,
    ("GET", "/ws"): _roles("terminal", "clerk", "reviewer"),
    # catalogue
    ("GET", "/api/items"): ANY,
    ("GET", "/api/items/{code}"): ANY,
    # operations
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/supervisor/figures"): _roles("qa", "admin"),
    # cases
    ("POST", "/api/cases"): _roles("clerk"),
    ("GET", "/api/cases"): _roles("clerk"),
    ("GET", "/api/cases/{case_no}"): ANY,
    ("GET", "/api/cases/{case_no}/qr.svg"): _roles("terminal", "clerk"),
    ("POST", "/api/cases/{case_no}/resubmit"): _roles("clerk"),
    ("POST", "/api/cases/{case_no}/materials"): _roles("clerk"),
    ("GET", "/api/terminal/cases"): _roles("terminal"),
    ("POST", "/api/terminal/unlock"): _roles("terminal"),
    ("POST", "/api/terminal/claim"): _roles("terminal"),
    ("POST", "/api/terminal/lock"): _roles("terminal"),
    # review
    ("GET", "/api/reviewer/queue"): _roles("reviewer"),
    ("POST", "/api/reviewer/claim"): _roles("reviewer"),
    ("POST", "/api/reviewer/decide"): _roles("reviewer"),
    ("GET", "/api/approval/figures"): _roles("reviewer", "qa", "admin"),
    ("GET", "/api/approval/dead"): _roles("admin"),
    # certificates
    ("POST", "/api/certificates/{certificate}/revoke"): _roles("admin"),
    ("GET", "/api/certificates/{certificate}.pdf"): ANY,
    ("POST", "/api/certificates/{certificate}/printed"): _roles("terminal"),
    ("GET", "/api/verify/{certificate}"): PUBLIC,
    ("GET", "/verify/{certificate}"): PUBLIC,
    # scans
    ("GET", "/api/scans/{scan_id}"): STAFF,
    # QA: search, replay, 问题件, evaluations, holds, exports (signaling/qa_*.py)
    ("GET", "/api/qa/config"): _roles("qa", "admin", "reviewer"),  # reviewer: 问题件 categories
    ("GET", "/api/qa/calls"): QA,
    ("GET", "/api/qa/calls/{call_id}"): QA,
    ("POST", "/api/qa/replays"): QA,
    ("POST", "/api/qa/replays/{access_id}/progress"): QA,
    ("GET", "/api/qa/access"): _roles("admin"),
    ("GET", "/api/qa/cases/{case_no}/history"): QA,
    ("POST", "/api/qa/flags"): _roles("qa", "admin", "reviewer"),  # reviewer: cases returned
    ("GET", "/api/qa/flags"): QA,
    ("POST", "/api/qa/flags/{flag_id}/steps"): QA,
    ("POST", "/api/qa/evaluations"): QA,
    ("GET", "/api/qa/evaluations/clerks"): QA,
    ("POST", "/api/qa/holds"): QA,
    ("GET", "/api/qa/holds"): QA,
    ("POST", "/api/qa/holds/{hold_id}/release"): _roles("admin"),
    ("POST", "/api/qa/exports"): QA,  # QA only for 投诉处理 (checked in the handler)
    # running the service (issue 18): the supervisor's live view
    ("GET", "/supervisor/"): PUBLIC,
    ("GET", "/ws/supervisor"): _roles("admin", "supervisor"),
    # 好差评 at the kiosk; 回访 tasks
    ("GET", "/api/terminal/rating"): _roles("terminal"),
    ("POST", "/api/terminal/rating"): _roles("terminal"),
    ("GET", "/api/followups"): _roles("supervisor", "qa", "admin"),
    ("POST", "/api/followups/{followup_id}/close"): _roles("supervisor", "qa", "admin"),
    # administration: accounts, terminals, catalogue, holidays (signaling/admin_api.py)
    ("GET", "/admin/"): PUBLIC,
    ("GET", "/api/admin/accounts"): _roles("admin"),
    ("POST", "/api/admin/accounts"): _roles("admin"),
    ("POST", "/api/admin/accounts/{username}"): _roles("admin"),
    ("GET", "/api/admin/terminals"): _roles("admin"),
    ("POST", "/api/admin/terminals"): _roles("admin"),
    ("POST", "/api/admin/terminals/{terminal_id}"): _roles("admin"),
    ("GET", "/api/admin/items"): _roles("admin"),
    ("POST", "/api/admin/items/{code}"): _roles("admin"),
    ("GET", "/api/admin/calendar"): _roles("admin"),
    ("POST", "/api/admin/calendar"): _roles("admin"),
    ("POST", "/api/admin/calendar/{day}/delete"): _roles("admin"),
    # reports: the page's table, CSV and XLSX
    ("GET", "/api/reports"): _roles("admin", "supervisor"),
    ("GET", "/api/reports.csv"): _roles("admin", "supervisor"),
    ("GET", "/api/reports.xlsx"): _roles("admin", "supervisor"),
    ("GET", "/api/clerk/today"): _roles("clerk"),  # the console's own figures
    # 办事指南: open to anyone (the applicant's phone), and its QR code for the kiosk
    ("GET", "/guide/{code}"): PUBLIC,
    ("GET", "/api/guide/{code}/qr.svg"): PUBLIC,
    # 监看: a live call watched receive-only (signaling/watch_api.py)
    ("POST", "/api/supervisor/calls/{call_id}/watch"): _roles("admin", "supervisor"),
    # identity check in the call (signaling/identity_api.py; objects checked there)
    ("POST", "/api/calls/{call_id}/identity"): _roles("clerk"),
    ("GET", "/api/calls/{call_id}/identity"): _roles("clerk"),
    ("GET", "/api/identity/reasons"): _roles("clerk"),
    ("GET", "/api/identity/{verification_id}"): STAFF,
    ("GET", "/api/identity/{verification_id}/evidence/{index}"): STAFF,
    ("POST", "/api/identity/{verification_id}/override"): _roles("clerk"),
    # document capture: a call's materials, reuse, a case's materials (signaling/materials_api)
    ("GET", "/api/calls/{call_id}/materials"): _roles("clerk"),
    ("POST", "/api/calls/{call_id}/materials/reuse-offers"): _roles("clerk"),
    ("POST", "/api/calls/{call_id}/materials/reuse"): _roles("clerk"),
    ("GET", "/api/cases/{case_no}/materials"): _roles("clerk", "reviewer", "qa"),
    ("GET", "/api/cases/{case_no}/materials.pdf"): _roles("clerk", "reviewer", "qa"),
    ("GET", "/api/cases/{case_no}/materials/{scan_id}"): _roles("clerk", "reviewer", "qa"),
}

# WebSocket message type → the roles that may send it (others get `forbidden_type`).
MESSAGES: dict[str, frozenset[SessionRole]] = {
    "join_queue": _roles("terminal"),
    "leave_queue": _roles("terminal"),
    "set_status": _roles("clerk"),
    "accept_offer": _roles("clerk"),
    "reject_offer": _roles("clerk"),
    "end_call": _roles("clerk"),
    "invite_clerk": _roles("clerk"),
    "accept_invite": _roles("clerk"),
    "wrapup_done": _roles("clerk"),
    "ping": _roles("terminal", "clerk", "reviewer"),
}


def route_key(request: web.Request) -> tuple[str, str] | None:
    info = request.match_info.route.resource
    if info is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, info.canonical if not info.canonical.startswith("/web") else "/web/{filename}"


def may_send(role: str, message_type: str) -> bool:
    return role in MESSAGES.get(message_type, frozenset())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def enforce(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what the table does not allow, before the handler runs."""
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404 / 405: aiohttp answers
    key = route_key(request)
    allowed = ROUTES.get(key) if key is not None else None
    if allowed is None:
        raise http_error(web.HTTPForbidden, "forbidden", "您没有权限进行此操作")
    if allowed == PUBLIC:
        return await handler(request)
    session = await current_session(request)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "not_logged_in", "请先登录")
    if session.role not in allowed:
        raise http_error(web.HTTPForbidden, "forbidden", "您没有权限进行此操作")
    return await handler(request)

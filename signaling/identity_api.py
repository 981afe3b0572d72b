"""The identity check as staff use it: the clerk starts it (forwarded to the call's worker),
reads each attempt, overrides a 人工复核 / 不通过 with a reason; reviewers and QA read the
verification of a case they may see, with its evidence images.

The worker writes the record (`core.identity_tables`); here only the override is written,
with an audit entry. The ID number read from the card is shown whole only to the clerks of
the call (they type it into the case); everyone else sees it masked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from approval import workflow as wf
from approval.tables import cases
from core.identity_tables import (
    OVERRIDE_REASONS,
    IdentityState,
    IdentityVerdict,
    identity_checks,
)
from core.replies import http_error
from signaling.appkeys import ENGINE, REDIS, SETTINGS
from signaling.audit_trail import note
from signaling.auth import Session, require_session
from signaling.case_access import CaseFacts, case_view, may_see_scans
from signaling.case_http import body, jsonable
from signaling.node import NODE
from signaling.queue_store import QueueStore

ACCEPTABLE = (IdentityVerdict.REVIEW.value, IdentityVerdict.FAIL.value)


class IdentityOverride(BaseModel):
    reason: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=2, max_length=500)


async def _call_clerks(request: web.Request, call_id: str) -> tuple[str, list[str]]:
    """(the call's clerk, every clerk of it) from routing's record, or 404."""
    call = await QueueStore(request.app[REDIS]).call(call_id)
    if call is None:
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话的记录")
    return call.clerk, call.clerks()


async def start_check(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    call_id = request.match_info["call_id"]
    clerk, _ = await _call_clerks(request, call_id)
    if clerk != session.who:
        raise http_error(web.HTTPForbidden, "not_your_call",
                         "只有接听这次通话的工作人员可以发起核验")
    placement = request.app[NODE].calls.placement
    answer = await placement.call_action(call_id, "identity.start", session.who, {})
    if "error" in answer:
        code = str(answer["error"].get("code", "media_error"))
        status = 409 if code in ("check_running", "no_attempts_left") else 503
        if code == "no_call":
            status = 404
        return web.json_response(answer, status=status)
    await note(request.app[ENGINE], session.who, "identity.start", call_id,
               {"verification_id": answer.get("verification_id")})
    return web.json_response(answer, status=201)


async def _row(request: web.Request, verification_id: str) -> dict[str, Any]:
    async with request.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(identity_checks).where(
            identity_checks.c.verification_id == verification_id))).mappings().first()
    if row is None:
        raise http_error(web.HTTPNotFound, "no_verification", "没有这次核验的记录")
    return dict(row)


async def _may_read(request: web.Request, session: Session, row: dict[str, Any]) -> str:
    """"whole" for the clerks of the call, "masked" through a readable case, else 404."""
    if session.role == "clerk":
        if row["clerk"] == session.who:
            return "whole"
        call = await QueueStore(request.app[REDIS]).call(row["call_id"])
        if call is not None and session.who in call.clerks():
            return "whole"
    async with request.app[ENGINE].connect() as conn:
        carrying = (await conn.execute(select(
            cases.c.case_no, cases.c.terminal_id, cases.c.clerk, cases.c.call_clerks,
            cases.c.state).where(
            cases.c.verification["verification_id"].astext == row["verification_id"])
            .limit(5))).mappings().all()
    for case in carrying:
        plan = wf.CaseState.model_validate(case["state"]).plan
        facts = CaseFacts.of(dict(case), {g for st in plan for g in st.groups})
        if may_see_scans(session, case_view(session, facts)):
            return "masked"
    raise http_error(web.HTTPNotFound, "no_verification", "没有这次核验的记录")


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The record as pages see it: never the encrypted number, evidence by index."""
    out = {k: v for k, v in row.items() if k not in ("id_number_enc",)}
    out["evidence"] = [{"kind": e["kind"], "index": i, "sha256": e["sha256"],
                        "scan_id": e.get("scan_id")}
                       for i, e in enumerate(row["evidence"] or [])]
    out["decision"] = decision_of(row)
    return dict(jsonable(out))


def decision_of(row: dict[str, Any]) -> str | None:
    """What the case shows: 通过, 人工核验 (accepted by a clerk with a reason) or nothing yet."""
    if row["verdict"] == IdentityVerdict.PASS.value:
        return IdentityVerdict.PASS.value
    if row["override_by"]:
        return "人工核验"
    return None


async def read_check(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin")
    row = await _row(request, request.match_info["verification_id"])
    await _may_read(request, session, row)
    return web.json_response(public(row))


async def call_checks(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    call_id = request.match_info["call_id"]
    _, clerks = await _call_clerks(request, call_id)
    if session.who not in clerks:
        raise http_error(web.HTTPForbidden, "not_your_call", "您不在这次通话中")
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(identity_checks).where(
            identity_checks.c.call_id == call_id).order_by(identity_checks.c.attempt))
            ).mappings().all()
    return web.json_response({"attempts": [public(dict(r)) for r in rows]})


def _inside(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) else None


async def evidence(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin")
    row = await _row(request, request.match_info["verification_id"])
    await _may_read(request, session, row)
    try:
        item = (row["evidence"] or [])[int(request.match_info["index"])]
    except (ValueError, IndexError) as exc:
        raise http_error(web.HTTPNotFound, "no_evidence", "没有这张核验图像") from exc
    path = _inside(request.app[SETTINGS].storage_root, str(item["path"]))
    if path is None or not path.is_file():
        raise http_error(web.HTTPGone, "evidence_missing", "核验图像已不在存储中")
    data = await asyncio.to_thread(path.read_bytes)
    await note(request.app[ENGINE], session.who, "identity.evidence", row["verification_id"],
               {"index": request.match_info["index"], "role": session.role})
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store",
                                 "X-SHA256": str(item["sha256"])})


async def override(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk")
    sent = await body(request, IdentityOverride)
    row = await _row(request, request.match_info["verification_id"])
    if row["clerk"] != session.who:
        raise http_error(web.HTTPForbidden, "not_your_call",
                         "只有接听这次通话的工作人员可以人工核验")
    if sent.reason not in OVERRIDE_REASONS:
        raise http_error(web.HTTPUnprocessableEntity, "bad_reason", "请从列表中选择人工核验的原因")
    overridable = row["state"] == IdentityState.ABORTED.value or row["verdict"] in ACCEPTABLE
    if not overridable or row["override_by"]:
        raise http_error(web.HTTPUnprocessableEntity, "nothing_to_override",
                         "这次核验不需要或已经人工核验过")
    at = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        await conn.execute(update(identity_checks).where(
            identity_checks.c.verification_id == row["verification_id"]).values(
            override_reason=sent.reason, override_text=sent.text, override_by=session.who,
            override_at=at))
    await note(request.app[ENGINE], session.who, "identity.override", row["verification_id"],
               {"call_id": row["call_id"], "verdict": row["verdict"], "reason": sent.reason,
                "text": sent.text}, at)
    return web.json_response(public(await _row(request, row["verification_id"])))


async def reasons(request: web.Request) -> web.Response:
    await require_session(request, "clerk")
    return web.json_response({"reasons": list(OVERRIDE_REASONS)})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/calls/{call_id}/identity", start_check)
    app.router.add_get("/api/calls/{call_id}/identity", call_checks)
    app.router.add_get("/api/identity/reasons", reasons)
    app.router.add_get("/api/identity/{verification_id}", read_check)
    app.router.add_get("/api/identity/{verification_id}/evidence/{index}", evidence)
    app.router.add_post("/api/identity/{verification_id}/override", override)

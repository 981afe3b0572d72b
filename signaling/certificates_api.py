"""Certificates: the e-sealed PDF for those entitled, printed at the kiosk, revoked by an
administrator, and checked by anyone (`/api/verify/{certificate}`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from approval.certificate import render_pdf
from approval.store import CaseStore
from core.replies import http_error
from signaling.appkeys import SETTINGS
from signaling.auth import require_session
from signaling.case_http import CERT_NO, body, now, store_of, transition

Verdict = Literal["valid", "revoked", "forged"]


class RevokeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


async def certificate_row(request: web.Request) -> dict[str, Any]:
    number = request.match_info["certificate"]
    row = await store_of(request).certificate(number) if CERT_NO.match(number) else None
    if row is None:
        raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    return row


async def revoke_certificate(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    revoke = await body(request, RevokeRequest)
    row = await certificate_row(request)
    await store_of(request).revoke(row["certificate_no"], session.who, revoke.reason, now())
    return web.json_response({"certificate_no": row["certificate_no"], "revoked": True})


async def certificate_pdf(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal", "clerk", "reviewer", "qa", "admin")
    row = await certificate_row(request)
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
    row = await certificate_row(request)
    detail = await store_of(request).get(row["case_no"])
    if detail["case"]["terminal_id"] != session.who:
        raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    return await transition(request, store_of(request).deliver(row["case_no"], session.who,
                                                               now()))


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
    row = await store.certificate(number) if CERT_NO.match(number) else None
    return verdict(row, store, request.query.get("s")), row


async def verify_json(request: web.Request) -> web.Response:
    result, row = await check_certificate(request)
    fields = json.loads(row["content"]) if row and result != "forged" else None
    return web.json_response({"verdict": result, "certificate": fields})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/certificates/{certificate}/revoke", revoke_certificate)
    app.router.add_get("/api/certificates/{certificate}.pdf", certificate_pdf)
    app.router.add_post("/api/certificates/{certificate}/printed", certificate_printed)
    app.router.add_get("/api/verify/{certificate}", verify_json)

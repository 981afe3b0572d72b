"""Certificates: the e-sealed PDF for those entitled, printed at the kiosk, revoked by an
administrator, and checked by anyone (`/api/verify/{certificate}`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from approval import workflow as wf
from approval.certificate import render_pdf
from approval.store import CaseStore
from core.replies import http_error
from signaling.appkeys import SETTINGS
from signaling.auth import Session, require_session
from signaling.case_access import CaseFacts, case_view
from signaling.case_http import CERT_NO, body, now, store_of, transition
from signaling.kiosk_certificates import may_print

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


async def _entitled(request: web.Request, session: Session, row: dict[str, Any]) -> None:
    """The caller may see the case (a terminal: also opened by the PIN or a slip)."""
    detail = await store_of(request).get(row["case_no"])
    case = detail["case"]
    plan = wf.CaseState.model_validate(case["state"]).plan
    facts = CaseFacts.of(case, {g for st in plan for g in st.groups})
    if case_view(session, facts) == "none":
        raise http_error(web.HTTPNotFound, "no_certificate", "证照不存在")
    if not await may_print(request, session, row["case_no"]):
        raise http_error(web.HTTPForbidden, "proof_required",
                         "请先输入回执上的办件编号和身份证后四位，或请村里工作人员输入 PIN")


async def certificate_pdf(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal", "clerk", "reviewer", "qa", "admin")
    row = await certificate_row(request)
    fields = json.loads(row["content"])
    await _entitled(request, session, row)
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
    await _entitled(request, session, row)
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


# What a certificate check shows anyone; the name (masked) only with the QR's signature.
PUBLIC_FIELDS = ("certificate_no", "item_name", "issuer", "issued_at")


def public_fields(row: dict[str, Any] | None, result: Verdict,
                  presented: str | None) -> dict[str, str] | None:
    """Never the case number nor the whole ID number; the applicant's name (masked) only
    when the QR's signature parameter came along (the holder of the paper)."""
    if row is None or result == "forged":
        return None
    fields = json.loads(row["content"])
    out = {k: str(fields[k]) for k in PUBLIC_FIELDS}
    if presented and len(presented) >= 16:
        name = str(fields["applicant"])
        out["applicant"] = name[0] + "*" * (len(name) - 2) + name[-1] if len(name) > 2 \
            else name[0] + "*"
        out["id_number"] = str(fields["id_number"])  # already masked in the content
    return out


async def verify_json(request: web.Request) -> web.Response:
    result, row = await check_certificate(request)
    return web.json_response({"verdict": result, "certificate": public_fields(
        row, result, request.query.get("s"))})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/certificates/{certificate}/revoke", revoke_certificate)
    app.router.add_get("/api/certificates/{certificate}.pdf", certificate_pdf)
    app.router.add_post("/api/certificates/{certificate}/printed", certificate_printed)
    app.router.add_get("/api/verify/{certificate}", verify_json)

"""Certificates at the kiosk: shown and printed only to the village staff (their PIN) or to
the applicant who proves the case is theirs (the slip's case number and the last four
characters of the ID number, or the slip's QR code, typed or scanned).

A proof opens the kiosk session for `UNLOCK_S` (Redis, `keys.kiosk_unlock(sid)`): the
staff see every ready certificate of the terminal, the applicant only the one proven.
Wrong PINs and proofs are throttled per terminal (`login_guard`, scope "kiosk:<id>").
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from approval import effects
from approval import workflow as wf
from approval.store import CaseNotFound
from core import keys
from core.pii import PiiKeys
from core.replies import http_error
from signaling.appkeys import CLOCK, ENGINE, REDIS, SETTINGS
from signaling.audit_trail import note
from signaling.auth import PASSWORDS, Session, require_session, session_id
from signaling.case_http import CASE_NO, body, store_of
from signaling.login_guard import LoginGuard, wait_words
from signaling.terminal_enrolment import check_staff_pin

UNLOCK_S = 300


class StaffUnlock(BaseModel):
    pin: str = Field(min_length=4, max_length=12, pattern=r"^[0-9]+$")


class SlipProof(BaseModel):
    """`slip`: the case number typed, or the slip's QR text scanned ("<case no>-<code>")."""

    slip: str = Field(min_length=17, max_length=64)
    id_last4: str | None = Field(default=None, pattern=r"^[0-9]{3}[0-9Xx]$")


def slip_text(pii: PiiKeys, case_no: str) -> str:
    """What the slip's QR code carries."""
    return f"{case_no}-{pii.slip_code(case_no)}"


def _slip_parts(slip: str) -> tuple[str, str]:
    text = slip.strip().upper()
    case_no, code = text[:17], text[18:] if len(text) > 18 and text[17] == "-" else ""
    return case_no, code


async def unlocked(request: web.Request) -> dict[str, Any]:
    raw = await request.app[REDIS].get(keys.kiosk_unlock(session_id(request) or "-"))
    return json.loads(raw) if raw else {"staff": False, "cases": []}


async def may_print(request: web.Request, session: Session, case_no: str) -> bool:
    """Whether this kiosk session may show and print the case's certificate now."""
    if session.role != "terminal":
        return True
    opened = await unlocked(request)
    return bool(opened["staff"]) or case_no in opened["cases"]


async def _save(request: web.Request, opened: dict[str, Any]) -> None:
    await request.app[REDIS].set(keys.kiosk_unlock(session_id(request) or "-"),
                                 json.dumps(opened), ex=UNLOCK_S)


async def _throttled(request: web.Request, session: Session) -> LoginGuard:
    guard = LoginGuard(request.app[REDIS], request.app[SETTINGS])
    wait = await guard.blocked([f"kiosk:{session.who}"], request.app[CLOCK]())
    if wait > 0:
        raise http_error(web.HTTPTooManyRequests, "locked",
                         f"输错次数太多，请 {wait_words(wait)}后再试，或请村里工作人员帮忙")
    return guard


async def _failed(request: web.Request, session: Session, guard: LoginGuard,
                  action: str) -> None:
    await guard.failed(f"kiosk:{session.who}", request.app[CLOCK](), guard.account)
    await note(request.app[ENGINE], f"terminal:{session.who}", action, session.who)


async def ready_cases(request: web.Request, session: Session,
                      only: list[str] | None = None) -> list[dict[str, Any]]:
    base = request.app[SETTINGS].base_url
    rows = await store_of(request).by_terminal(session.who)
    out = []
    for r in rows:
        if only is not None and r["case_no"] not in only:
            continue
        number = r["certificate_no"]
        out.append({**r, "status_name": wf.STATUS_NAMES[r["status"]],
                    "certificate_url": effects.certificate_url(base, number) if number
                    else None})
    return out


async def terminal_cases(request: web.Request) -> web.Response:
    """The kiosk's start screen: how many certificates wait (no case numbers, no names);
    the cases themselves once the staff PIN or a slip opened them."""
    session = await require_session(request, "terminal")
    opened = await unlocked(request)
    rows = await ready_cases(request, session)
    waiting = sum(1 for r in rows if r["status"] == "certified")
    if not opened["staff"]:
        rows = [r for r in rows if r["case_no"] in opened["cases"]]
    return web.json_response({"ready": waiting, "staff": bool(opened["staff"]),
                              "cases": rows})


async def staff_unlock(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal")
    given: StaffUnlock = await body(request, StaffUnlock)
    guard = await _throttled(request, session)
    if not await check_staff_pin(request.app[ENGINE], request.app[PASSWORDS], session.who,
                                 given.pin):
        await _failed(request, session, guard, "kiosk.pin_failed")
        raise http_error(web.HTTPUnauthorized, "bad_pin", "PIN 不对")
    await guard.succeeded(f"kiosk:{session.who}")
    await _save(request, {"staff": True, "cases": []})
    await note(request.app[ENGINE], f"terminal:{session.who}", "kiosk.staff_unlock",
               session.who)
    return web.json_response({"staff": True, "cases": await ready_cases(request, session)})


async def slip_unlock(request: web.Request) -> web.Response:
    session = await require_session(request, "terminal")
    proof: SlipProof = await body(request, SlipProof)
    guard = await _throttled(request, session)
    case_no, code = _slip_parts(proof.slip)
    store = store_of(request)
    good = False
    if CASE_NO.match(case_no):
        try:
            case = (await store.get(case_no))["case"]
        except CaseNotFound:
            case = None
        if case is not None and case["terminal_id"] == session.who:
            if code:
                good = hmac.compare_digest(code, store.pii.slip_code(case_no))
            elif proof.id_last4:
                good = hmac.compare_digest(case["id_number"][-4:].upper(),
                                           proof.id_last4.upper())
    if not good:
        await _failed(request, session, guard, "kiosk.proof_failed")
        raise http_error(web.HTTPUnauthorized, "bad_proof",
                         "回执编号或身份证后四位不对，请再核对一下")
    await guard.succeeded(f"kiosk:{session.who}")
    opened = await unlocked(request)
    await _save(request, {"staff": opened["staff"],
                          "cases": sorted({*opened["cases"], case_no})})
    await note(request.app[ENGINE], f"terminal:{session.who}", "kiosk.slip_unlock", case_no)
    return web.json_response({"staff": opened["staff"],
                              "cases": await ready_cases(request, session, [case_no])})


async def lock(request: web.Request) -> web.Response:
    await require_session(request, "terminal")
    await request.app[REDIS].delete(keys.kiosk_unlock(session_id(request) or "-"))
    return web.json_response({"ok": True})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/terminal/cases", terminal_cases)
    app.router.add_post("/api/terminal/unlock", staff_unlock)
    app.router.add_post("/api/terminal/claim", slip_unlock)
    app.router.add_post("/api/terminal/lock", lock)

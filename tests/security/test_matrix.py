"""Every object route as every kind of caller: anonymous, the case's terminal, another
terminal, the case's clerk, another clerk, the call's second clerk, a reviewer of the
case's group and one of another group, QA and an administrator (issue 16, items 3, 4, 11,
13 and 16; the "Proof" matrix)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import select

from approval.case_search import cases_with_id_number
from approval.tables import cases
from core import records
from signaling.appkeys import CASES, SETTINGS
from testkit.calls import bound_call
from testkit.demo import DEMO_STAFF_PIN
from tests.approval.conftest import ID_NUMBER, submission
from tests.security.conftest import browser, staff, terminal

CALLERS = ("anonymous", "terminal", "other_terminal", "clerk", "other_clerk", "second_clerk",
           "reviewer", "other_reviewer", "qa", "admin")
LOGINS = {"clerk": "clerk1", "other_clerk": "clerk2", "second_clerk": "clerk_hn",
          "reviewer": "reviewer_town", "other_reviewer": "reviewer_district", "qa": "qa1",
          "admin": "admin"}


@dataclass
class World:
    case_no: str
    certificate_no: str
    scan_id: str
    sessions: dict[str, ClientSession]


def _png() -> bytes:
    img = np.full((200, 320, 3), 255, np.uint8)
    img[40:160, 40:280] = (30, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


async def _world(server: TestServer, redis: aioredis.Redis, tag: str) -> World:
    settings = server.app[SETTINGS]
    store = server.app[CASES]
    call_id, scan_id = f"call-{tag}", f"scan-{tag}"
    await bound_call(redis, store.engine, call_id, "T-420115-001", "clerk1", (scan_id,),
                     second_clerk="clerk_hn")
    path = settings.storage_root / "scans" / call_id / f"{scan_id}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png())
    sessions = {"anonymous": browser(server),
                "terminal": await terminal(server, "T-420115-001"),
                "other_terminal": await terminal(server, "T-420115-002")}
    for caller, username in LOGINS.items():
        sessions[caller] = await staff(server, username)
    sub = submission("LS-JZ").model_copy(update={"call_id": call_id, "scans": [scan_id]})
    resp = await sessions["clerk"].post("/api/cases", data=sub.model_dump_json(),
                                        headers={"Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    case_no = (await resp.json())["case_no"]
    decided = await store.decide(case_no, 1, "town-civil-affairs", "reviewer_town", "approve",
                                 "", datetime.now(UTC))
    assert decided.state.certificate_no
    return World(case_no, decided.state.certificate_no, scan_id, sessions)


@pytest.fixture
async def world(server: TestServer, redis: aioredis.Redis,
                request: pytest.FixtureRequest) -> Any:
    w = await _world(server, redis, request.node.name[-12:].replace("_", "")[:10])
    yield w
    for s in w.sessions.values():
        await s.close()


def row(*statuses: int) -> dict[str, int]:
    return dict(zip(CALLERS, statuses, strict=True))


#            anon term other clerk other 2nd  rev  other qa   admin
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/cases/{case}"): row(401, 200, 404, 200, 404, 200, 200, 404, 400, 200),
    ("GET", "/api/cases/{case}?purpose=质检抽查"): row(401, 200, 404, 200, 404, 200, 200, 404,
                                                     200, 200),
    ("GET", "/api/cases/{case}/qr.svg"): row(401, 200, 404, 200, 404, 200, 403, 403, 403, 403),
    ("POST", "/api/cases/{case}/resubmit"): row(401, 403, 403, 409, 404, 403, 403, 403, 403,
                                                403),
    ("POST", "/api/cases/{case}/materials"): row(401, 403, 403, 409, 404, 403, 403, 403, 403,
                                                 403),
    ("GET", "/api/scans/{scan}"): row(401, 403, 403, 200, 404, 200, 200, 404, 400, 404),
    ("GET", "/api/scans/{scan}?purpose=质检抽查"): row(401, 403, 403, 200, 404, 200, 200, 404,
                                                     200, 404),
    ("GET", "/api/certificates/{cert}.pdf"): row(401, 403, 404, 200, 404, 200, 200, 404, 200,
                                                 200),
    ("POST", "/api/certificates/{cert}/printed"): row(401, 403, 404, 403, 403, 403, 403, 403,
                                                      403, 403),
    ("POST", "/api/certificates/{cert}/revoke"): row(401, 403, 403, 403, 403, 403, 403, 403,
                                                     403, 400),
    ("GET", "/api/verify/{cert}"): row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/api/terminal/cases"): row(401, 200, 200, 403, 403, 403, 403, 403, 403, 403),
    ("POST", "/api/reviewer/decide"): row(401, 403, 403, 403, 403, 403, 403, 403, 403, 403),
}
BODIES: dict[str, dict[str, Any]] = {
    "/materials": {"names": ["相关证明"]}, "/revoke": {"reason": ""},
    "/api/reviewer/decide": {"case_no": "{case}", "seq": 1, "group": "town-civil-affairs",
                             "decision": "approve"}}


def _fill(text: str, w: World) -> str:
    return text.replace("{case}", w.case_no).replace("{cert}", w.certificate_no).replace(
        "{scan}", w.scan_id)


async def test_every_object_route_answers_each_caller_as_the_rules_say(world: World) -> None:
    wrong = []
    for (method, path), expected in EXPECTED.items():
        body = next((b for k, b in BODIES.items() if path.endswith(k)), None)
        json_body = None if body is None else {
            k: _fill(v, world) if isinstance(v, str) else v for k, v in body.items()}
        for caller, status in expected.items():
            resp = await world.sessions[caller].request(method, _fill(path, world),
                                                        json=json_body)
            if resp.status != status:
                wrong.append((caller, method, path, resp.status, status, await resp.text()))
    assert wrong == []


async def test_each_caller_sees_as_much_personal_data_as_the_role_needs(world: World) -> None:
    async def case(caller: str, query: str = "") -> dict[str, Any]:
        resp = await world.sessions[caller].get(f"/api/cases/{world.case_no}{query}")
        out: dict[str, Any] = (await resp.json())["case"]
        return out

    assert (await case("clerk"))["id_number"] == ID_NUMBER
    assert (await case("reviewer"))["id_number"] == ID_NUMBER
    assert (await case("qa", "?purpose=质检抽查"))["phone"] == "13800138000"
    for caller in ("second_clerk", "admin"):
        seen = await case(caller)
        assert seen["id_number"] == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
        assert seen["phone"] == "138****8000"
    assert (await case("admin"))["scan_urls"] == []  # scans are ID cards: not for admins
    kiosk = await case("terminal")
    assert "id_number" not in kiosk and "phone" not in kiosk and "applicant_name" not in kiosk


async def test_reads_of_personal_data_are_audited_with_the_purpose(
        world: World, server: TestServer) -> None:
    await world.sessions["qa"].get(f"/api/cases/{world.case_no}?purpose=投诉核查")
    engine = server.app[CASES].engine
    async with engine.connect() as conn:
        after = (await conn.execute(select(records.audit_log.c.after).where(
            records.audit_log.c.action == "case.read",
            records.audit_log.c.subject == world.case_no,
            records.audit_log.c.actor == "qa1"))).scalars().all()
    assert {"role": "qa", "purpose": "投诉核查"} in after


async def test_numbers_are_encrypted_at_rest_and_found_by_the_keyed_hash(
        world: World, server: TestServer) -> None:
    store = server.app[CASES]
    async with store.engine.connect() as conn:
        raw = (await conn.execute(select(cases.c.id_number, cases.c.phone, cases.c.id_number_hash)
                                  .where(cases.c.case_no == world.case_no))).one()
    assert ID_NUMBER not in raw.id_number and "13800138000" not in raw.phone
    assert ID_NUMBER not in raw.id_number_hash
    found = await cases_with_id_number(store.engine, store.pii, ID_NUMBER.lower())
    assert world.case_no in [c["case_no"] for c in found]
    assert all("id_number" not in c for c in found)


async def test_the_public_check_shows_only_what_a_check_needs(world: World,
                                                              server: TestServer) -> None:
    anon = world.sessions["anonymous"]
    bare = await (await anon.get(f"/api/verify/{world.certificate_no}")).json()
    assert bare["verdict"] == "valid"
    assert set(bare["certificate"]) == {"certificate_no", "item_name", "issuer", "issued_at"}
    row_ = await server.app[CASES].certificate(world.certificate_no)
    assert row_ is not None
    signed = await (await anon.get(
        f"/api/verify/{world.certificate_no}?s={row_['signature'][:16]}")).json()
    assert signed["certificate"]["applicant"] == "刘*兰"
    assert signed["certificate"]["id_number"].count("*") == 8
    page = await (await anon.get(f"/verify/{world.certificate_no}")).text()
    assert world.case_no not in page and "刘桂兰" not in page and ID_NUMBER not in page


async def test_a_case_must_come_from_the_clerks_own_call_and_its_scans(
        world: World, redis: aioredis.Redis, server: TestServer) -> None:
    store = server.app[CASES]
    await bound_call(redis, store.engine, "call-elsewhere", "T-420115-002", "clerk2",
                     ("scan-elsewhere",))
    base = submission("LS-JZ")
    tries = {
        "no_call": base.model_copy(update={"call_id": "call-never"}),
        "wrong_terminal": base.model_copy(update={"call_id": "call-elsewhere",
                                                  "terminal_id": "T-420115-001"}),
        "not_your_call": base.model_copy(update={"call_id": "call-elsewhere",
                                                 "terminal_id": "T-420115-002", "scans": []}),
        "foreign_scan": base.model_copy(update={"call_id": "call-1",
                                                "scans": ["scan-elsewhere"]}),
    }
    await bound_call(redis, store.engine, "call-1", "T-420115-001", "clerk1")
    for code, sub in tries.items():
        resp = await world.sessions["clerk"].post("/api/cases", data=sub.model_dump_json(),
                                                  headers={"Content-Type": "application/json"})
        assert resp.status == 422 and (await resp.json())["error"]["code"] == code, code


async def test_the_kiosk_prints_only_after_the_staff_pin_or_the_slips_proof(
        world: World, server: TestServer) -> None:
    kiosk = world.sessions["terminal"]
    pdf = f"/api/certificates/{world.certificate_no}.pdf"
    listing = await (await kiosk.get("/api/terminal/cases")).json()
    assert listing["ready"] >= 1 and listing["cases"] == []  # no case numbers to bystanders
    assert (await kiosk.get(pdf)).status == 403
    wrong = await kiosk.post("/api/terminal/claim", json={"slip": world.case_no,
                                                          "id_last4": "9999"})
    assert wrong.status == 401
    good = await kiosk.post("/api/terminal/claim", json={"slip": world.case_no,
                                                         "id_last4": ID_NUMBER[-4:]})
    assert good.status == 200
    assert [c["case_no"] for c in (await good.json())["cases"]] == [world.case_no]
    assert (await kiosk.get(pdf)).status == 200
    await kiosk.post("/api/terminal/lock")
    assert (await kiosk.get(pdf)).status == 403
    slip = server.app[CASES].pii.slip_code(world.case_no)
    scanned = await kiosk.post("/api/terminal/claim", json={"slip": f"{world.case_no}-{slip}"})
    assert scanned.status == 200 and (await kiosk.get(pdf)).status == 200
    await kiosk.post("/api/terminal/lock")
    staff_pin = await kiosk.post("/api/terminal/unlock", json={"pin": DEMO_STAFF_PIN})
    assert staff_pin.status == 200 and (await staff_pin.json())["staff"] is True
    assert (await kiosk.get(pdf)).status == 200


async def test_guessing_the_last_four_digits_locks_the_kiosk(world: World) -> None:
    kiosk = world.sessions["other_terminal"]
    for i in range(5):
        resp = await kiosk.post("/api/terminal/claim", json={"slip": world.case_no,
                                                             "id_last4": f"{i:04d}"})
        assert resp.status == 401
    resp = await kiosk.post("/api/terminal/unlock", json={"pin": DEMO_STAFF_PIN})
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "locked"

"""The cases REST API end to end: clerk submits, reviewers decide, the terminal prints."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore, make_store
from approval.tables import certificates
from approval.worker import sweep_forever, utcnow
from core import keys
from core.settings import Settings
from signaling import (
    auth,
    cases_api,
    certificates_api,
    kiosk_certificates,
    reviewer_api,
    verify_page,
)
from signaling.appkeys import CASES, ENGINE, REDIS, SETTINGS
from testkit.calls import bound_call
from testkit.demo import DEMO_STAFF_PIN
from tests.approval.conftest import submission

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: Any, approval_settings: Settings, redis: aioredis.Redis,
                 engine: AsyncEngine) -> Client:
    app = web.Application()
    app[SETTINGS] = approval_settings
    app[REDIS] = redis
    app[ENGINE] = engine
    app[CASES] = make_store(engine, approval_settings)
    auth.setup_routes(app)
    for routes in (cases_api, reviewer_api, certificates_api, verify_page, kiosk_certificates):
        routes.setup_routes(app)  # the approval sweep runs in the approval worker
    # The call the test cases come from: clerk1 at the village terminal, with its scans.
    await bound_call(redis, engine, "call-1", "T-420115-001", "clerk1", ("scan-1", "scan-2"))
    c: Client = await aiohttp_client(app)
    return c


async def login(client: Client, username: str) -> None:
    resp = await client.post("/api/login", json={"username": username, "password": "demo1234"})
    assert resp.status == 200


async def as_terminal(client: Client) -> None:
    resp = await client.post("/api/terminal/session", json={"token": "demo-terminal-tzl-7f3a"})
    assert resp.status == 200


async def take_and_decide(client: Client, reviewer: str, decision: str = "approve",
                          comment: str = "") -> dict[str, Any]:
    await login(client, reviewer)
    claimed = await (await client.post("/api/reviewer/claim")).json()
    task = claimed["task"]
    assert task is not None
    detail = await (await client.get(f"/api/cases/{task['case_no']}")).json()
    assert detail["case"]["applicant_name"] == "刘桂兰"  # the reviewer sees the clerk's file
    assert detail["case"]["verification"]["decision"] == "人工核验"
    resp = await client.post("/api/reviewer/decide", json={
        "case_no": task["case_no"], "seq": task["seq"], "group": task["group"],
        "decision": decision, "comment": comment, "message_id": task["message_id"]})
    assert resp.status == 200, await resp.text()
    out: dict[str, Any] = await resp.json()
    return out


async def test_case_goes_from_clerk_through_two_levels_to_a_printed_certificate(
        client: Client, redis: aioredis.Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel())
    await login(client, "clerk1")
    resp = await client.post("/api/cases", data=submission("DB-SQ").model_dump_json())
    assert resp.status == 201, await resp.text()
    case_no = (await resp.json())["case_no"]

    await login(client, "reviewer_town")
    queue = await (await client.get("/api/reviewer/queue")).json()
    assert case_no in [c["case_no"] for c in queue["waiting"]]
    first = await take_and_decide(client, "reviewer_town")
    assert first["status"] == "in_review"
    final = await take_and_decide(client, "reviewer_district", comment="同意")
    assert final["status"] == "certified"
    number = final["certificate_no"]

    results = []
    for _ in range(20):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if msg is None:
            continue
        target, payload = msg["data"].split("\n", 1)
        if target == "terminal:T-420115-001":
            results.append(json.loads(payload))
    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it
    mine = [r for r in results if r["case_no"] == case_no]
    assert mine and mine[-1]["type"] == "case_result" and mine[-1]["status"] == "certified"
    assert mine[-1]["certificate_url"].endswith(f"/api/certificates/{number}.pdf")

    await as_terminal(client)
    # The village staff open the kiosk's certificates with their PIN.
    await client.post("/api/terminal/unlock", json={"pin": DEMO_STAFF_PIN})
    pdf = await client.get(f"/api/certificates/{number}.pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
    printed = await client.post(f"/api/certificates/{number}/printed")
    assert (await printed.json())["status"] == "delivered"

    page = await client.get(f"/verify/{number}")
    assert "有效" in await page.text()
    snapshot = await (await client.get("/api/terminal/cases")).json()
    [row] = [c for c in snapshot["cases"] if c["case_no"] == case_no]
    assert row["status_name"] == "已打印交付" and row["certificate_url"].endswith(".pdf")

    await login(client, "clerk1")
    mine = await (await client.get("/api/cases")).json()
    assert case_no in [c["case_no"] for c in mine["cases"]]
    await login(client, "admin")
    figures = await (await client.get("/api/approval/figures")).json()
    assert {"town", "district"} <= {f["level"] for f in figures["steps_last_24h"]}
    revoked = await client.post(f"/api/certificates/{number}/revoke", json={"reason": "测试撤销"})
    assert revoked.status == 200
    assert "已撤销" in await (await client.get(f"/verify/{number}")).text()


async def test_forged_and_revoked_certificates_fail_the_check(
        client: Client, engine: AsyncEngine) -> None:
    await login(client, "clerk1")
    resp = await client.post("/api/cases", data=submission("LS-JZ").model_dump_json())
    case_no = (await resp.json())["case_no"]
    number = (await take_and_decide(client, "reviewer_town"))["certificate_no"]
    assert (await (await client.get(f"/api/verify/{number}")).json())["verdict"] == "valid"
    # A certificate number nobody issued, and a QR whose signature does not match.
    assert (await (await client.get("/api/verify/E20260101ABCDEF0123")).json())["verdict"] \
        == "forged"
    assert (await (await client.get(f"/api/verify/{number}?s=AAAA")).json())["verdict"] \
        == "forged"
    async with engine.begin() as conn:  # someone edits the stored certificate
        row = (await conn.execute(certificates.select().where(
            certificates.c.certificate_no == number))).mappings().one()
        await conn.execute(certificates.update().where(
            certificates.c.certificate_no == number).values(
            content=row["content"].replace("刘桂兰", "王小二")))
    page = await client.get(f"/verify/{number}")
    assert "伪造" in await page.text()
    async with engine.begin() as conn:
        await conn.execute(certificates.update().where(
            certificates.c.certificate_no == number).values(
            content=row["content"], revoked_at=row["issued_at"]))
    assert (await (await client.get(f"/api/verify/{number}")).json())["verdict"] == "revoked"
    assert case_no


async def test_clerk_input_is_checked(client: Client) -> None:
    await login(client, "clerk1")
    bad_id = submission("LS-JZ").model_copy(update={"id_number": "420115198001011230"})
    resp = await client.post("/api/cases", data=bad_id.model_dump_json())
    assert resp.status == 400 and "校验码" in (await resp.json())["error"]["message"]
    core_missing = submission("DB-SQ", ["身份证"], "2099-01-01")
    resp = await client.post("/api/cases", data=core_missing.model_dump_json())
    assert resp.status == 422 and "核心材料" in (await resp.json())["error"]["message"]
    bad_outcome = json.loads(submission("LS-JZ").model_dump_json()) | {"outcome": "随便"}
    assert (await client.post("/api/cases", json=bad_outcome)).status == 400
    await login(client, "reviewer_town")
    assert (await client.post("/api/cases",
                              data=submission().model_dump_json())).status == 403


async def test_return_with_reason_then_resubmit(client: Client) -> None:
    await login(client, "clerk1")
    case_no = (await (await client.post(
        "/api/cases", data=submission("LS-JZ").model_dump_json())).json())["case_no"]
    out = await take_and_decide(client, "reviewer_town", "return", "申请书缺少签字")
    assert out["status"] == "returned"
    await login(client, "clerk1")
    detail = await (await client.get(f"/api/cases/{case_no}")).json()
    assert detail["decisions"][-1]["comment"] == "申请书缺少签字"
    again = await client.post(f"/api/cases/{case_no}/resubmit")
    assert (await again.json())["status"] == "in_review"
    assert (await take_and_decide(client, "reviewer_town"))["status"] == "certified"
    await asyncio.sleep(0)


async def test_the_approval_sweep_hands_reviewers_a_case_missing_from_redis(
        client: Client, approval_settings: Settings, redis: aioredis.Redis,
        store: CaseStore) -> None:
    """With the approval worker's sweep running (its one owner), a PostgreSQL case missing
    from Redis is enqueued and assigned, and the reviewer's queue shows it."""
    stop = asyncio.Event()
    sweeper = asyncio.create_task(sweep_forever(redis, store, approval_settings, stop))
    try:
        change = await store.create(submission("LS-JZ"), "clerk1", utcnow())  # never enqueued
        await login(client, "reviewer_town")
        await client.get("/api/reviewer/queue")  # online: the sweep assigns work to it
        for _ in range(100):
            queue = await (await client.get("/api/reviewer/queue")).json()
            if change.case_no in [t["case_no"] for t in queue["held"]]:
                break
            await asyncio.sleep(0.05)
        assert change.case_no in [t["case_no"] for t in queue["held"]]
    finally:
        stop.set()
        await sweeper


async def test_rongque_result_is_released_when_materials_arrive(client: Client) -> None:
    await login(client, "clerk1")
    body = submission("LS-JZ", ["相关证明"], "2099-01-01").model_dump_json()
    case_no = (await (await client.post("/api/cases", data=body)).json())["case_no"]
    assert (await take_and_decide(client, "reviewer_town"))["status"] == "awaiting_materials"
    await login(client, "reviewer_district")  # not a matter of the district
    assert (await client.get(f"/api/cases/{case_no}")).status == 404
    await login(client, "clerk1")
    wrong = await client.post(f"/api/cases/{case_no}/materials", json={"names": ["身份证"]})
    assert wrong.status == 409
    done = await client.post(f"/api/cases/{case_no}/materials", json={"names": ["相关证明"]})
    out = await done.json()
    assert out["status"] == "certified" and out["certificate_no"]


async def test_deciding_from_the_list_clears_the_held_task(client: Client,
                                                          redis: aioredis.Redis) -> None:
    await login(client, "clerk1")
    case_no = (await (await client.post(
        "/api/cases", data=submission("LS-JZ").model_dump_json())).json())["case_no"]
    await login(client, "reviewer_town")
    task = (await (await client.post("/api/reviewer/claim")).json())["task"]
    assert task["case_no"] == case_no
    resp = await client.post("/api/reviewer/decide", json={  # no message id: from the list
        "case_no": case_no, "seq": 1, "group": task["group"], "decision": "approve",
        "message_id": "1-0"})
    assert resp.status == 200
    queue = await (await client.get("/api/reviewer/queue")).json()
    assert queue["held"] == []
    pending = await redis.xpending(keys.approval_tasks(task["group"]), "reviewers")
    assert pending["pending"] == 0

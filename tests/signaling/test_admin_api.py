"""Administration through the real app: a clerk the admin creates logs in and takes a
call; a terminal enrolled with a code reaches the queue; an item edit shows at once;
holidays; every change audited with before and after; reports as CSV and XLSX."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date

import openpyxl
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from core import records
from core.settings import Settings
from signaling.app import create_app
from signaling.appkeys import CASES
from tests.signaling.peers import Peer, connect_terminal, fast
from tests.signaling.test_ops_supervisor import login


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def audit_of(settings: Settings, action: str, subject: str) -> dict[str, object]:
    engine = records.make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(records.audit_log).where(
                records.audit_log.c.action == action, records.audit_log.c.subject == subject)
                .order_by(records.audit_log.c.id.desc()).limit(1))).mappings().first()
    finally:
        await engine.dispose()
    assert row is not None, f"no audit entry {action} {subject}"
    return dict(row)


async def test_a_created_clerk_logs_in_and_takes_a_call(server: TestServer,
                                                        settings: Settings) -> None:
    admin = await login(server, "admin")
    resp = await admin.post("/api/admin/accounts", json={
        "username": "newclerk", "display_name": "新坐席 周丽", "role": "clerk",
        "password": "welcome2026x", "region_code": "420115", "skills": ["DB-SQ"],
        "jurisdictions": ["42"]})
    assert resp.status == 201, await resp.text()
    weak = await admin.post("/api/admin/accounts", json={
        "username": "weak", "display_name": "弱", "role": "clerk", "password": "123"})
    assert weak.status == 400 and "密码" in (await weak.json())["error"]["message"]
    entry = await audit_of(settings, "admin.account.create", "newclerk")
    assert entry["before"] is None and entry["after"]["skills"] == ["DB-SQ"]  # type: ignore[index]
    assert "password_hash" not in entry["after"]  # type: ignore[operator]

    clerk = ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
    assert (await clerk.post("/api/login", json={"username": "newclerk",
                                                 "password": "welcome2026x"})).status == 200
    desk = Peer(clerk, await clerk.ws_connect("/ws"))
    await desk.recv("clerk_state")
    await desk.send(type="set_status", status="ready")
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="DB-SQ")
    offer = await desk.recv("offer")
    await desk.send(type="accept_offer", offer_id=offer["offer_id"])
    assert (await term.recv("call_assigned"))["clerk_username"] == "newclerk"
    await desk.send(type="end_call", call_id=offer and (await desk.recv("call_assigned"))
                    ["call_id"])

    resp = await admin.post("/api/admin/accounts/newclerk", json={"action": "disable"})
    assert resp.status == 200
    entry = await audit_of(settings, "admin.account.disable", "newclerk")
    assert entry["before"]["active"] is True and entry["after"]["active"] is False  # type: ignore[index]
    again = await clerk.post("/api/login", json={"username": "newclerk",
                                                 "password": "welcome2026x"})
    assert again.status == 401
    for peer in (desk, term):
        await peer.close()
    await admin.close()


async def test_a_terminal_enrolled_with_a_code_reaches_the_queue(server: TestServer) -> None:
    admin = await login(server, "admin")
    resp = await admin.post("/api/admin/terminals", json={
        "terminal_id": "T-420115-090", "name": "新建村便民服务点", "village": "江夏区新建村",
        "region_code": "420115"})
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["code"]
    kiosk = ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
    assert (await kiosk.post("/api/terminal/enrol", json={"code": code})).status == 200
    assert (await kiosk.post("/api/terminal/enrol", json={"code": code})).status != 200
    term = Peer(kiosk, await kiosk.ws_connect("/ws"))
    hello = await term.recv("hello")
    assert hello["who"] == "T-420115-090"
    await term.send(type="join_queue", item_code="YL-CB")
    assert (await term.recv("queue_status"))["position"] >= 1
    listed = (await (await admin.get("/api/admin/terminals")).json())["terminals"]
    row = next(t for t in listed if t["terminal_id"] == "T-420115-090")
    assert "token_hash" not in row and not row["enrol_pending"]
    resp = await admin.post("/api/admin/terminals/T-420115-090",
                            json={"action": "rename", "name": "新建村服务站"})
    assert resp.status == 200
    await term.close()
    await admin.close()


async def test_catalogue_and_holidays_edits_are_seen_and_audited(server: TestServer,
                                                                settings: Settings) -> None:
    admin = await login(server, "admin")
    limit = (await (await admin.get("/api/items/YL-CB")).json())["time_limit_days"] + 1
    resp = await admin.post("/api/admin/items/YL-CB", json={
        "plain_name": "交城乡居民养老保险", "time_limit_days": limit,
        "guide": {"steps": ["带上身份证", "视频里给工作人员看"], "fees": "不收费"}})
    assert resp.status == 200, await resp.text()
    item = await (await admin.get("/api/items/YL-CB")).json()
    assert item["plain_name"] == "交城乡居民养老保险" and item["time_limit_days"] == limit
    entry = await audit_of(settings, "admin.item.change", "YL-CB")
    before, after = entry["before"], entry["after"]
    assert before["time_limit_days"] == limit - 1 and after["time_limit_days"] == limit  # type: ignore[index]

    resp = await admin.post("/api/admin/calendar", json={"day": "2026-10-01", "kind": "holiday",
                                                         "name": "国庆节"})
    assert resp.status == 200
    days = (await (await admin.get("/api/admin/calendar")).json())["days"]
    assert {"day": "2026-10-01", "kind": "holiday", "name": "国庆节"} in days
    # New due times count it at once (a Thursday, now off).
    assert not server.app[CASES].calendar.is_working_day(date(2026, 10, 1))
    assert (await admin.post("/api/admin/calendar/2026-10-01/delete")).status == 200
    assert (await admin.post("/api/admin/calendar/2026-10-01/delete")).status == 404
    assert server.app[CASES].calendar.is_working_day(date(2026, 10, 1))

    clerk = await login(server, "clerk1")
    assert (await clerk.get("/api/admin/accounts")).status == 403
    assert (await clerk.post("/api/admin/items/YL-CB", json={"name": "x"})).status == 403
    await clerk.close()
    await admin.close()


async def test_reports_as_page_csv_and_xlsx(server: TestServer) -> None:
    sup = await login(server, "duty1")
    page = await (await sup.get("/api/reports", params={"by": "item"})).json()
    assert page["columns"][0] == "事项" and "办结率" in page["columns"]
    csv = await sup.get("/api/reports.csv", params={"period": "month", "by": "village"})
    assert csv.status == 200
    text = (await csv.read()).decode("utf-8-sig")
    assert text.startswith("分组,来访人次,接通,放弃,办件数,办结数,办结率")
    xlsx = await sup.get("/api/reports.xlsx", params={"by": "clerk"})
    assert xlsx.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await xlsx.read())).active
    assert sheet is not None
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[0] == "分组" and "满意度" in header
    await sup.close()

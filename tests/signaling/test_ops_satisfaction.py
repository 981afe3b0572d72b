"""好差评 through the real app: the kiosk rates its own call once; 不满意 opens a 回访 task
that a supervisor closes with a note; the rating shows in the figures and QA search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from approval.calendar import WorkCalendar
from core.settings import Settings
from signaling.app import create_app
from signaling.satisfaction import followup_due
from tests.signaling.peers import (
    VILLAGE2,
    Peer,
    connect_clerk,
    connect_terminal,
    fast,
    until,
)
from tests.signaling.test_ops_supervisor import board, login


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def finished_call(server: TestServer) -> tuple[Peer, Peer, str]:
    term = await connect_terminal(server)
    desk = await connect_clerk(server)
    await term.send(type="join_queue", item_code="DB-SQ")
    offer = await desk.recv("offer")
    await desk.send(type="accept_offer", offer_id=offer["offer_id"])
    call = await desk.recv("call_assigned")
    await desk.send(type="end_call", call_id=call["call_id"])
    await term.recv("call_ended")
    return term, desk, call["call_id"]


def test_a_followup_is_due_after_working_days_only() -> None:
    friday = datetime(2026, 10, 2, 15, 0, tzinfo=UTC)
    cal = WorkCalendar.parse("2026-10-05")  # Monday off
    due = followup_due(cal, friday, 2)
    assert due.date().isoformat() == "2026-10-07"  # Tue, Wed
    makeup = WorkCalendar.parse("", "2026-10-03")  # Saturday worked (调休)
    assert followup_due(makeup, friday, 1).date().isoformat() == "2026-10-03"


async def test_dissatisfied_opens_a_followup_closed_with_a_note(server: TestServer) -> None:
    sup = await board(server)
    await sup.until("the snapshot", lambda v: "day" in v)
    term, desk, call_id = await finished_call(server)
    config = await (await term.client.get("/api/terminal/rating")).json()
    assert [r["words"] for r in config["ratings"]] == ["非常满意", "满意", "基本满意", "不满意"]

    other = await connect_terminal(server, VILLAGE2)
    resp = await other.client.post("/api/terminal/rating", json={
        "call_id": call_id, "rating": "satisfied"})
    assert resp.status == 404  # not its call

    resp = await term.client.post("/api/terminal/rating", json={
        "call_id": call_id, "rating": "dissatisfied", "reasons": ["等待时间太长"]})
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["rating"] == "不满意" and answer["followup_id"]
    again = await term.client.post("/api/terminal/rating", json={
        "call_id": call_id, "rating": "very_satisfied"})
    assert again.status == 409

    view = await sup.until("the rating in today's figures", lambda v: v["day"]["satisfaction"]
                           ["counts"]["dissatisfied"] >= 1)
    assert view["day"]["open_followups"] >= 1

    tasks = (await (await sup.client.get("/api/followups")).json())["followups"]
    task = next(t for t in tasks if t["call_id"] == call_id)
    assert task["reasons"] == ["等待时间太长"] and task["clerk"] == "clerk1"
    assert not task["overdue"] and task["rating"] == "不满意"
    resp = await sup.client.post(f"/api/followups/{task['followup_id']}/close",
                                 json={"note": "已电话回访，申请人表示理解"})
    assert resp.status == 200 and (await resp.json())["on_time"]
    still = (await (await sup.client.get("/api/followups")).json())["followups"]
    assert all(t["call_id"] != call_id for t in still)

    qa = await login(server, "qa1")
    found = await (await qa.get("/api/qa/calls", params={"satisfaction": "不满意"})).json()
    assert found is not None  # the filter runs against the ratings (no media call here)
    clerk_client = desk.client
    assert (await clerk_client.get("/api/followups")).status == 403

    async def mine() -> dict[str, Any] | None:
        f: dict[str, Any] = await (await clerk_client.get("/api/clerk/today")).json()
        return f if f["calls"] >= 1 and f["ratings"] >= 1 else None

    await until(mine)
    today = await mine()
    assert today is not None and today["satisfied_share"] is not None
    for peer in (term, desk, other, sup):
        await peer.close()
    await qa.close()

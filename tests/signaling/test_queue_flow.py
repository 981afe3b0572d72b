"""Queue flows through the real app, a real Redis and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from core import keys
from core.settings import Settings
from signaling.app import create_app
from testkit.clock import JumpClock
from tests.signaling.peers import (
    VILLAGE,
    VILLAGE2,
    connect_clerk,
    connect_terminal,
    fast,
    until,
)


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
async def timed(settings: Settings, redis: aioredis.Redis,
                clock: JumpClock) -> AsyncIterator[TestServer]:
    """A node with the real timers (20 s to answer, 30 s wrap-up and grace) and a clock
    the test moves on, so the timers end when the test says, not after a sleep."""
    srv = TestServer(create_app(settings, clock=clock))
    await srv.start_server()
    yield srv
    await srv.close()


async def test_join_offer_accept_end_wrapup(timed: TestServer, clock: JumpClock) -> None:
    clerk = await connect_clerk(timed)
    term = await connect_terminal(timed)
    await term.send(type="join_queue", item_code="DB-SQ")
    status = await term.recv("queue_status")
    assert status["item_code"] == "DB-SQ" and status["position"] == 1

    offer = await clerk.recv("offer")
    assert offer["item_code"] == "DB-SQ" and offer["terminal_id"] == VILLAGE
    assert offer["item_name"] == "最低生活保障申请"
    await clerk.send(type="accept_offer", offer_id=offer["offer_id"])
    call_c = await clerk.recv("call_assigned")
    call_t = await term.recv("call_assigned")
    assert call_c["call_id"] == call_t["call_id"]
    await clerk.recv("clerk_state", state="in_call")

    await clerk.send(type="end_call", call_id=call_c["call_id"])
    await term.recv("call_ended", call_id=call_c["call_id"])
    wrap = await clerk.recv("clerk_state", state="wrap_up")
    assert wrap["wrapup_until"] is not None
    assert await clerk.quiet("clerk_state", 0.5) == []  # 30 s of wrap-up have not passed
    # The wrap-up timer returns the clerk to idle and ready by itself.
    clock.jump(31)
    back = await clerk.recv("clerk_state", state="idle", timeout=5)
    assert back["status"] == "ready"
    await term.close()
    await clerk.close()


async def test_position_and_estimated_wait_follow_the_queue(server: TestServer) -> None:
    t1 = await connect_terminal(server, VILLAGE)
    t2 = await connect_terminal(server, VILLAGE2)
    await t1.send(type="join_queue", item_code="GL-JT")
    await t1.recv("queue_status", position=1)
    await t2.send(type="join_queue", item_code="GL-JT")
    s2 = await t2.recv("queue_status", position=2)
    assert s2["waiting_total"] == 2 and s2["estimated_wait_s"] > 0
    await t1.send(type="leave_queue")
    left = await t1.recv("left_queue")
    assert left["reason"] == "left"
    await t2.recv("queue_status", position=1)
    await t1.close()
    await t2.close()


async def test_priority_applicant_is_offered_first(server: TestServer) -> None:
    t1 = await connect_terminal(server, VILLAGE)
    t2 = await connect_terminal(server, VILLAGE2)
    await t1.send(type="join_queue", item_code="YL-CB")
    await t1.recv("queue_status")
    await t2.send(type="join_queue", item_code="YL-CB", priority=True)
    await t2.recv("queue_status", position=1)
    clerk = await connect_clerk(server)
    offer = await clerk.recv("offer")
    assert offer["terminal_id"] == VILLAGE2 and offer["priority"] is True
    for p in (t1, t2, clerk):
        await p.close()


async def test_offer_timeout_keeps_place_and_sets_clerk_not_ready(
        timed: TestServer, clock: JumpClock) -> None:
    clerk1 = await connect_clerk(timed, "clerk1")
    term = await connect_terminal(timed)
    await term.send(type="join_queue", item_code="GD-BT")
    offer = await clerk1.recv("offer")
    assert await clerk1.quiet("offer_closed", 0.5) == []
    clock.jump(21)  # past the 20 s to answer
    closed = await clerk1.recv("offer_closed", timeout=5)
    assert closed == {"type": "offer_closed", "offer_id": offer["offer_id"], "reason": "timeout"}
    state = await clerk1.recv("clerk_state", status="not_ready")
    assert state["reason"] == "未接听"
    # Still first in line, and the next clerk to go ready gets it.
    status = await term.recv("queue_status", state="waiting")
    assert status["position"] == 1
    clerk2 = await connect_clerk(timed, "clerk2")
    offer2 = await clerk2.recv("offer")
    assert offer2["ticket_id"] == offer["ticket_id"]
    for p in (clerk1, clerk2, term):
        await p.close()


async def test_reject_goes_to_next_clerk(server: TestServer) -> None:
    clerk1 = await connect_clerk(server, "clerk1")
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="GD-BT")
    offer = await clerk1.recv("offer")
    clerk2 = await connect_clerk(server, "clerk2")
    await clerk1.send(type="reject_offer", offer_id=offer["offer_id"])
    await clerk1.recv("offer_closed", reason="rejected")
    await clerk1.recv("clerk_state", status="not_ready")
    offer2 = await clerk2.recv("offer")
    assert offer2["ticket_id"] == offer["ticket_id"]
    for p in (clerk1, clerk2, term):
        await p.close()


async def test_jurisdiction_routes_partner_province_to_its_clerks(server: TestServer) -> None:
    hubei = await connect_clerk(server, "clerk1")
    hunan = await connect_clerk(server, "clerk_hn")
    # A Hunan applicant at the Hubei village point: 异地受理、属地办理.
    term = await connect_terminal(server, VILLAGE)
    await term.send(type="join_queue", item_code="YB-CB", handling_region="430104")
    offer = await hunan.recv("offer")
    assert offer["handling_region"] == "430104"
    assert await hubei.quiet("offer", 0.5) == []
    for p in (hubei, hunan, term):
        await p.close()


async def test_terminal_reload_keeps_place_within_grace(server: TestServer) -> None:
    t1 = await connect_terminal(server, VILLAGE)
    t2 = await connect_terminal(server, VILLAGE2)
    await t1.send(type="join_queue", item_code="JY-DJ")
    first = await t1.recv("queue_status")
    await t2.send(type="join_queue", item_code="JY-DJ")
    await t2.recv("queue_status", position=2)
    await t1.close()
    t1 = await connect_terminal(server, VILLAGE)
    again = await t1.recv("queue_status")
    assert again["ticket_id"] == first["ticket_id"] and again["position"] == 1
    await t1.close()
    await t2.close()


async def test_terminal_gone_past_grace_is_abandoned(
        timed: TestServer, clock: JumpClock, redis: aioredis.Redis) -> None:
    t1 = await connect_terminal(timed, VILLAGE)
    t2 = await connect_terminal(timed, VILLAGE2)
    await t1.send(type="join_queue", item_code="JY-DJ")
    await t1.recv("queue_status")
    await t2.send(type="join_queue", item_code="JY-DJ")
    await t2.recv("queue_status", position=2)
    await t1.close()
    # The node noticed: the 30 s of grace started.
    await until(lambda: redis.zscore(keys.disconnected_terminals(), VILLAGE))
    # Still within the grace: the first keeps its place (a refresh may repeat it).
    assert all(m["position"] == 2 for m in await t2.quiet("queue_status", 0.3))
    clock.jump(31)
    # The second applicant moves up once the first is dropped.
    await t2.recv("queue_status", position=1, timeout=5)
    t1 = await connect_terminal(timed, VILLAGE)
    assert await t1.quiet("queue_status", 0.5) == []
    await t1.close()
    await t2.close()


async def test_clerk_connection_dying_returns_its_offer(server: TestServer) -> None:
    clerk1 = await connect_clerk(server, "clerk1")
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="TD-LZ")
    offer = await clerk1.recv("offer")
    await clerk1.close()
    clerk2 = await connect_clerk(server, "clerk2")
    offer2 = await clerk2.recv("offer", timeout=5)
    assert offer2["ticket_id"] == offer["ticket_id"]
    await clerk2.close()
    await term.close()


async def test_two_nodes_share_one_queue(settings: Settings, redis: aioredis.Redis) -> None:
    node_a = TestServer(create_app(fast(settings, node_id="node-a")))
    node_b = TestServer(create_app(fast(settings, node_id="node-b")))
    await node_a.start_server()
    await node_b.start_server()
    try:
        term = await connect_terminal(node_a)
        clerk = await connect_clerk(node_b)
        await term.send(type="join_queue", item_code="HJ-ZM")
        offer = await clerk.recv("offer")
        await clerk.send(type="accept_offer", offer_id=offer["offer_id"])
        assigned = await term.recv("call_assigned")
        assert assigned["clerk_username"] == "clerk1"
        await term.close()
        await clerk.close()
    finally:
        await node_a.close()
        await node_b.close()


async def test_queue_change_is_sent_only_to_terminals_it_changes(
        settings: Settings, redis: aioredis.Redis) -> None:
    srv = TestServer(create_app(fast(settings, position_refresh_s=60.0)))
    await srv.start_server()
    try:
        t1 = await connect_terminal(srv, VILLAGE)
        t2 = await connect_terminal(srv, VILLAGE2)
        await t1.send(type="join_queue", item_code="YL-CB")
        await t1.recv("queue_status", position=1)
        await t2.send(type="join_queue", item_code="YL-CB", priority=True)
        await t2.recv("queue_status", position=1)
        await t1.recv("queue_status", position=2)
        clerk = await connect_clerk(srv)
        await clerk.recv("offer")
        await t2.recv("queue_status", state="offered")
        # Second in line with the same total and estimate: nothing new for the first joiner.
        assert await t1.quiet("queue_status", 1.0) == []
        for p in (t1, t2, clerk):
            await p.close()
    finally:
        await srv.close()


async def test_clerk_going_ready_gets_one_offer_across_nodes(settings: Settings,
                                                              redis: aioredis.Redis) -> None:
    node_a = TestServer(create_app(fast(settings, node_id="node-a")))
    node_b = TestServer(create_app(fast(settings, node_id="node-b")))
    await node_a.start_server()
    await node_b.start_server()
    try:
        term = await connect_terminal(node_a)
        await term.send(type="join_queue", item_code="HJ-ZM")
        await term.recv("queue_status", state="waiting")
        here = await connect_clerk(node_a, "clerk1", ready=False)
        there = await connect_clerk(node_b, "clerk1", ready=False)  # a second tab
        await here.send(type="set_status", status="ready")
        ready = await here.recv("clerk_state", status="ready")
        offer = await here.recv("offer")
        after = await here.recv("clerk_state", state="offered")
        assert ready["state"] == "idle" and after["offer_id"] == offer["offer_id"]
        assert (await there.recv("offer"))["offer_id"] == offer["offer_id"]
        await term.recv("queue_status", state="offered")
        # Delivered on the clerk's own node at once and on the other through Redis: once each.
        assert await here.quiet("offer", 0.5) == []
        assert await there.quiet("offer", 0.1) == []
        for p in (term, here, there):
            await p.close()
    finally:
        await node_a.close()
        await node_b.close()

"""The supervisor's live view through the real app, Redis and PostgreSQL: a snapshot, then
updates without asking when a terminal queues, a clerk goes ready, a call ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar, WSMsgType
from aiohttp.test_utils import TestServer

from core.settings import Settings
from signaling.app import create_app
from testkit.demo import DEMO_PASSWORD
from tests.signaling.peers import connect_clerk, connect_terminal, fast


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


class Board:
    """A supervisor page: the view as the messages built it."""

    def __init__(self, client: ClientSession, ws: Any) -> None:
        self.client, self.ws = client, ws
        self.view: dict[str, Any] = {}

    async def until(self, what: str, check: Callable[[dict[str, Any]], bool],
                    timeout_s: float = 8.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while not (self.view and check(self.view)):
                frame = await self.ws.receive()
                assert frame.type == WSMsgType.TEXT, f"closed waiting for {what}: {frame}"
                msg = json.loads(frame.data)
                assert msg["type"] in ("supervisor_snapshot", "supervisor_update")
                self.view.update({k: v for k, v in msg.items() if v is not None})
        return self.view

    async def close(self) -> None:
        await self.ws.close()
        await self.client.close()


async def login(server: TestServer, username: str) -> ClientSession:
    client = ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
    resp = await client.post("/api/login", json={"username": username,
                                                 "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    return client


async def board(server: TestServer, username: str = "duty1") -> Board:
    client = await login(server, username)
    return Board(client, await client.ws_connect("/ws/supervisor"))


def item(view: dict[str, Any], code: str) -> dict[str, Any]:
    return next(i for i in view["items"] if i["item_code"] == code)


def clerk(view: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in view["clerks"] if c["username"] == name), None)


async def test_the_board_follows_the_queue_the_clerks_and_the_day(server: TestServer) -> None:
    sup = await board(server)
    view = await sup.until("the snapshot", lambda v: "items" in v)
    before = view["day"]["calls"]["answered"]
    assert item(view, "DB-SQ")["waiting"] == 0

    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="DB-SQ")
    await sup.until("one waiting", lambda v: item(v, "DB-SQ")["waiting"] == 1)

    desk = await connect_clerk(server, ready=False)
    await sup.until("clerk1 paused", lambda v: (clerk(v, "clerk1") or {}).get("state")
                    == "not_ready")
    await desk.send(type="set_status", status="ready")
    offer = await desk.recv("offer")
    await desk.send(type="accept_offer", offer_id=offer["offer_id"])
    call = await desk.recv("call_assigned")
    view = await sup.until("the call", lambda v: any(c["call_id"] == call["call_id"]
                                                     for c in v["calls"]))
    assert item(view, "DB-SQ")["waiting"] == 0
    assert (clerk(view, "clerk1") or {})["state"] == "in_call"

    await desk.send(type="end_call", call_id=call["call_id"])
    # The day's figures and the live calls are parts pushed on their own: wait for both.
    view = await sup.until("answered counted and the call gone", lambda v: (
        v["day"]["calls"]["answered"] > before and v["day"]["calls"]["calls_ended"] > 0
        and all(c["call_id"] != call["call_id"] for c in v["calls"])))
    assert view["day"]["calls"]["service_level"] is not None
    assert sum(view["day"]["hours"]["answered"]) >= 1
    for peer in (term, desk, sup):
        await peer.close()


async def test_only_admins_and_supervisors_watch(server: TestServer) -> None:
    for username, allowed in (("clerk1", False), ("qa1", False), ("admin", True)):
        client = await login(server, username)
        resp = await client.get("/ws/supervisor")  # not an upgrade: the policy answers first
        assert (resp.status != 403) is allowed, username
        await client.close()

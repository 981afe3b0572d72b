"""The edges of the signaling app: CSRF and cross-site websockets, security headers, the
operators' endpoints (issue 16, items 8 and 15 and the Low list)."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestServer

from core.settings import Settings
from signaling.app import create_app, security_headers
from testkit.demo import DEMO_PASSWORD
from tests.security.conftest import browser

EVIL = {"Origin": "https://evil.example"}


async def test_another_sites_post_or_websocket_is_refused(server: TestServer) -> None:
    own = {"Origin": str(server.make_url("")).rstrip("/")}
    async with browser(server) as s:
        body = {"username": "clerk1", "password": DEMO_PASSWORD}
        resp = await s.post("/api/login", json=body, headers=EVIL)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "origin_refused"
        resp = await s.post("/api/login", json=body,
                            headers={"Sec-Fetch-Site": "cross-site"})
        assert resp.status == 403
        # What an HTML form can send: never read.
        resp = await s.post("/api/login", data="username=clerk1&password=demo1234",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 415 and (await resp.json())["error"]["code"] == "json_required"
        assert (await s.post("/api/login", json=body, headers=own)).status == 200
        try:
            await s.ws_connect("/ws", headers=EVIL)
            raise AssertionError("a cross-site websocket was accepted")
        except WSServerHandshakeError as exc:
            assert exc.status == 403
        ws = await s.ws_connect("/ws", headers=own)
        await ws.close()


async def test_every_answer_carries_the_security_headers(server: TestServer) -> None:
    async with browser(server) as s:
        for path in ("/terminal/", "/api/me", "/nowhere"):
            resp = await s.get(path)
            csp = resp.headers["Content-Security-Policy"]
            assert "http:" not in csp.split("connect-src")[1].split(";")[0].split()
            assert "frame-ancestors 'none'" in csp
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Referrer-Policy"] == "same-origin"
            assert "camera=(self)" in resp.headers["Permissions-Policy"]


def test_csp_reaches_only_the_service_and_its_workers(settings: Settings) -> None:
    s = replace(settings, media_public_url="https://window.example.lan/media",
                media_origins=("https://media2.example.lan",), cookie_secure=True)
    headers = security_headers(s)
    connect = headers["Content-Security-Policy"].split("connect-src ")[1].split(";")[0]
    assert connect.split() == ["'self'", "https://media2.example.lan",
                               "https://window.example.lan"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


async def test_metrics_need_the_ops_token_when_one_is_set(settings: Settings,
                                                          redis: aioredis.Redis) -> None:
    token = "o" * 40
    srv = TestServer(create_app(replace(settings, ops_token=token)))
    await srv.start_server()
    try:
        async with browser(srv) as s:
            assert (await s.get("/metrics")).status == 401
            ok = await s.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert ok.status == 200 and "vw_queue_length" in await ok.text()
            assert (await s.get("/healthz")).status == 200  # liveness stays open
    finally:
        await srv.close()


async def test_an_invited_clerk_who_left_cannot_end_the_call(server: TestServer) -> None:
    from tests.signaling.peers import connect_clerk, connect_terminal

    c1 = await connect_clerk(server, "clerk1")
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="LS-JZ")
    offer = await c1.recv("offer")
    await c1.send(type="accept_offer", offer_id=offer["offer_id"])
    call = await c1.recv("call_assigned")
    c2 = await connect_clerk(server, "clerk2", ready=False)
    await c1.send(type="invite_clerk", call_id=call["call_id"], username="clerk2")
    await c2.recv("call_invite")
    await c2.send(type="accept_invite", call_id=call["call_id"])
    await c2.recv("call_assigned")
    await c2.send(type="end_call", call_id=call["call_id"], id="e1")
    err = await c2.recv("error", ref="e1")
    assert err["code"] == "not_your_call"
    assert await term.quiet("call_ended", 0.5) == []
    for p in (c1, c2, term):
        await p.close()


async def test_region_and_priority_come_from_the_terminals_record(server: TestServer) -> None:
    from tests.signaling.peers import VILLAGE2, connect_terminal

    term = await connect_terminal(server, VILLAGE2)  # no partner regions in its record
    await term.send(type="join_queue", item_code="YB-CB", handling_region="430104", id="j1")
    err = await term.recv("error", ref="j1")
    assert err["code"] == "region_not_allowed"
    await term.close()


async def test_priority_counts_only_where_the_terminals_record_allows_it(
        server: TestServer) -> None:
    from sqlalchemy import update

    from core import records
    from signaling.appkeys import ENGINE
    from tests.signaling.peers import PARTNER, connect_clerk, connect_terminal

    engine = server.app[ENGINE]
    table = records.terminals
    async with engine.begin() as conn:
        await conn.execute(update(table).where(table.c.terminal_id == PARTNER).values(
            priority_allowed=False))
    try:
        term = await connect_terminal(server, PARTNER)
        clerk = await connect_clerk(server, "clerk_hn")
        await term.send(type="join_queue", item_code="YL-CB", priority=True)
        offer = await clerk.recv("offer")
        assert offer["terminal_id"] == PARTNER and offer["priority"] is False
        for p in (term, clerk):
            await p.close()
    finally:
        async with engine.begin() as conn:
            await conn.execute(update(table).where(table.c.terminal_id == PARTNER).values(
                priority_allowed=True))

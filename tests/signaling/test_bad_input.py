"""Bad input at the edge: each gets a coded error or a 4xx, and everyone else goes on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar, WSMsgType
from aiohttp.test_utils import TestServer

from core import keys
from core.settings import Settings
from signaling.app import create_app
from tests.signaling.peers import connect_clerk, connect_terminal, fast


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def test_each_bad_message_gets_a_coded_error_and_the_socket_stays(
    server: TestServer,
) -> None:
    term = await connect_terminal(server)
    bad = [
        ("{not json", "invalid_json"),
        (json.dumps({"type": "launch_rocket"}), "unknown_type"),
        (json.dumps({"type": "join_queue"}), "invalid_message"),
        (json.dumps({"type": "join_queue", "item_code": "NOPE"}), "unknown_item"),
        (json.dumps({"type": "accept_offer", "offer_id": "x"}), "forbidden_type"),
        ("x" * (70 * 1024), "too_large"),
    ]
    for raw, code in bad:
        await term.ws.send_str(raw)
        err = await term.recv("error")
        assert err["code"] == code, (raw[:40], err)
        assert err["message"] and "Traceback" not in err["message"]
    await term.ws.send_bytes(b"\x00\x01")
    assert (await term.recv("error"))["code"] == "binary_not_supported"
    await term.send(type="join_queue", item_code="GL-JT")  # still works afterwards
    assert (await term.recv("queue_status"))["position"] == 1
    await term.close()


async def test_flooding_is_limited_without_hurting_others(
    settings: Settings, redis: aioredis.Redis
) -> None:
    srv = TestServer(create_app(fast(settings, ws_rate_per_s=5.0, ws_rate_burst=5)))
    await srv.start_server()
    try:
        flood = await connect_terminal(srv)
        other = await connect_clerk(srv, "clerk1", ready=False)
        for _ in range(30):
            await flood.send(type="ping")
        limited = await flood.quiet("error", 1.0)
        pongs = [m for m in flood.seen if m["type"] == "pong"]
        assert limited and all(e["code"] == "rate_limited" for e in limited)
        assert 5 <= len(pongs) < 30
        await other.send(type="ping")
        await other.recv("pong")
        await flood.close()
        await other.close()
    finally:
        await srv.close()


async def test_bad_credentials_and_tokens_get_4xx(server: TestServer) -> None:
    async with ClientSession(base_url=str(server.make_url("/")),
                             cookie_jar=CookieJar(unsafe=True)) as s:
        r = await s.post("/api/login", json={"username": "clerk1", "password": "nope"})
        assert r.status == 401 and (await r.json())["error"]["code"] == "bad_credentials"
        r = await s.post("/api/login", data=b"{oops")
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_request"
        r = await s.post("/api/terminal/session", json={"token": "not-a-real-token"})
        assert r.status == 401 and (await r.json())["error"]["code"] == "bad_token"
        r = await s.get("/ws")
        assert r.status == 401
        r = await s.get("/api/supervisor/figures")
        assert r.status == 401
        # A reviewer may not act as a clerk or a terminal on the websocket.
        await s.post("/api/login", json={"username": "qa1", "password": "demo1234"})
        r = await s.get("/ws")
        assert r.status == 403


async def test_supervisor_figures_and_metrics(server: TestServer) -> None:
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="GL-JT")
    await term.recv("queue_status")
    async with ClientSession(base_url=str(server.make_url("/")),
                             cookie_jar=CookieJar(unsafe=True)) as s:
        await s.post("/api/login", json={"username": "admin", "password": "demo1234"})
        figures = await (await s.get("/api/supervisor/figures")).json()
        gl = next(i for i in figures["items"] if i["item_code"] == "GL-JT")
        assert gl["waiting"] == 1 and figures["counters"]["joined"] == 1
        text = await (await s.get("/metrics")).text()
        assert 'vw_queue_length{item="GL-JT"} 1.0' in text
        assert "vw_offers_timed_out_total" in text
    await term.close()


async def test_oversized_frame_beyond_hard_limit_closes_only_that_socket(
    server: TestServer,
) -> None:
    term = await connect_terminal(server)
    clerk = await connect_clerk(server, "clerk1", ready=False)
    await term.ws.send_str("y" * (2 * 1024 * 1024))
    frame = await term.ws.receive()
    while frame.type == WSMsgType.TEXT:
        frame = await term.ws.receive()
    assert frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    await clerk.send(type="ping")
    await clerk.recv("pong")
    await term.close()
    await clerk.close()


async def test_errors_answer_the_frame_they_are_about_by_its_id(server: TestServer) -> None:
    term = await connect_terminal(server)
    cases = [
        (json.dumps({"type": "launch_rocket", "id": "m-1"}), "unknown_type", "m-1"),
        (json.dumps({"type": "join_queue", "id": "m-2"}), "invalid_message", "m-2"),
        (json.dumps({"id": "m-3"}), "unknown_type", "m-3"),
        ("{not json", "invalid_json", None),
        (json.dumps({"type": "join_queue", "id": ["not", "text"]}), "invalid_message", None),
    ]
    for raw, code, ref in cases:
        await term.ws.send_str(raw)
        err = await term.recv("error")
        assert (err["code"], err["ref"]) == (code, ref), raw
    await term.close()


async def test_a_wrong_type_is_refused_not_coerced(server: TestServer,
                                                   redis: aioredis.Redis) -> None:
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="GL-JT", priority="yes", id="p-1")
    err = await term.recv("error")
    assert (err["code"], err["ref"]) == ("invalid_message", "p-1") and "priority" in err["message"]
    assert await term.quiet("queue_status", 0.3) == []  # no ticket was made
    assert await redis.zcard(keys.waiting("GL-JT")) == 0
    await term.close()


async def test_a_flood_gets_one_error_per_dropped_message_then_the_close(
        settings: Settings, redis: aioredis.Redis) -> None:
    srv = TestServer(create_app(fast(settings, ws_rate_per_s=5.0, ws_rate_burst=5)))
    await srv.start_server()
    try:
        flood = await connect_terminal(srv)
        for _ in range(300):
            await flood.send(type="ping")
        kinds: list[str] = []
        while True:
            frame = await flood.ws.receive(timeout=10)
            if frame.type != WSMsgType.TEXT:
                break
            msg = json.loads(frame.data)
            kinds.append(msg["code"] if msg["type"] == "error" else msg["type"])
        assert flood.ws.close_code == 1008
        # Closed at the 200th dropped message, after all 200 errors were sent.
        assert kinds.count("rate_limited") == 200
        assert kinds.count("pong") >= 5 and set(kinds) == {"pong", "rate_limited"}
        await flood.close()
    finally:
        await srv.close()

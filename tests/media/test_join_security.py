"""Join tokens are single use, a live connection is replaced only by a newer token of the
same participant, no credential travels in a URL, captures are bounded and the worker's
figures need the ops token (issue 16, items 5, 6 and 15 and the Low list)."""

from __future__ import annotations

import time
from dataclasses import replace

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from core.jointoken import JoinClaims, mint
from core.settings import Settings
from media.app import create_app
from media.hub import Hub
from signaling.placement import CallStart, WorkerPlacement
from tests.media.conftest import Worker, media_settings
from tests.media.peers import (
    GREEN,
    RED,
    ToneTrack,
    clerk_lines,
    colour_track,
    document_track,
    join,
    terminal_lines,
    until,
)


async def _post(url: str, **kw: object) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(url, **kw) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json()


async def test_a_join_token_works_once_and_an_older_one_cannot_take_over(
        worker: Worker, placement: WorkerPlacement) -> None:
    call_id = "call-sec-1"
    joins = await placement.start_call(CallStart(
        call_id=call_id, ticket_id="t", item_code="X", terminal_id="T-S", terminal_name="村",
        clerk_username="clerk-s", clerk_name="坐席"))
    term, clerk = joins["T-S"], joins["clerk-s"]
    assert term is not None and clerk is not None
    terminal = await join(worker.url, call_id, term.token, terminal_lines(
        colour_track(RED), document_track(), ToneTrack(440)))
    desk = await join(worker.url, call_id, clerk.token, clerk_lines(
        colour_track(GREEN), ToneTrack(1000)))
    try:
        status, body = await _post(f"{worker.url}/calls/{call_id}/join",
                                   json={"token": term.token, "sdp": "v=0"})
        assert status == 401 and body["error"]["code"] == "token_used"  # type: ignore[index]
        # A token minted for the terminal before its live connection's cannot replace it.
        older = mint(worker.settings.join_token_secret, JoinClaims(
            call_id, "T-S", "terminal", time.time() + 60, issued_at=time.time() - 60))
        status, body = await _post(f"{worker.url}/calls/{call_id}/join",
                                   json={"token": older, "sdp": "v=0"})
        assert status == 409 and body["error"]["code"] == "stale_token"  # type: ignore[index]
        await until(lambda: desk.received[1].frames, what="document frames at the clerk")
        auth = {"Authorization": f"Bearer {clerk.token}"}
        status, scan = await _post(f"{worker.url}/calls/{call_id}/capture", headers=auth)
        assert status == 201 and "token" not in str(scan["thumbnail_url"])
        async with aiohttp.ClientSession() as http:
            bare = f"{scan['thumbnail_url']}?token={clerk.token}"  # the old URL form
            async with http.get(bare) as resp:
                assert resp.status == 401
            async with http.get(str(scan["thumbnail_url"]), headers=auth) as resp:
                assert resp.status == 200
                assert resp.headers["Cache-Control"] == "private, no-store"
        # A control token is single use too (signaling mints one per request).
        control = mint(worker.settings.join_token_secret, JoinClaims(
            call_id, "signaling", "control", time.time() + 60, issued_at=time.time()))
        headers = {"Authorization": f"Bearer {control}"}
        assert (await _post(f"{worker.url}/calls/{call_id}/actions/none", headers=headers,
                            json={"actor": "x"}))[0] == 404
        status, body = await _post(f"{worker.url}/calls/{call_id}/actions/none",
                                   headers=headers, json={"actor": "x"})
        assert status == 401 and body["error"]["code"] == "token_used"  # type: ignore[index]
    finally:
        await placement.stop_call(call_id, "hangup")
        for peer in (terminal, desk):
            await peer.close()


async def test_captures_per_call_are_bounded(settings: Settings, redis: aioredis.Redis) -> None:
    s = media_settings(settings, media_max_captures=1, media_record=False)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    worker = Worker(s, server)
    engine_url = s.database_url
    from core.clock import wall
    from core.records import make_engine

    engine = make_engine(engine_url)
    http = aiohttp.ClientSession()
    placement = WorkerPlacement(s, redis, engine, http, wall)
    call_id = "call-sec-2"
    try:
        joins = await placement.start_call(CallStart(
            call_id=call_id, ticket_id="t", item_code="X", terminal_id="T-B",
            terminal_name="村", clerk_username="clerk-b", clerk_name="坐席"))
        term, clerk = joins["T-B"], joins["clerk-b"]
        assert term is not None and clerk is not None
        terminal = await join(worker.url, call_id, term.token, terminal_lines(
            colour_track(RED), document_track(), ToneTrack(440)))
        desk = await join(worker.url, call_id, clerk.token, clerk_lines(
            colour_track(GREEN), ToneTrack(1000)))
        await until(lambda: desk.received[1].frames, what="document frames at the clerk")
        auth = {"Authorization": f"Bearer {clerk.token}"}
        assert (await _post(f"{worker.url}/calls/{call_id}/capture", headers=auth))[0] == 201
        status, body = await _post(f"{worker.url}/calls/{call_id}/capture", headers=auth)
        assert status == 429 and body["error"]["code"] == "too_many_captures"  # type: ignore[index]
        await placement.stop_call(call_id, "hangup")
        for peer in (terminal, desk):
            await peer.close()
    finally:
        await http.close()
        await engine.dispose()
        await server.close()


async def test_health_needs_the_ops_token_and_thumbnails_stay_under_the_root(
        settings: Settings, redis: aioredis.Redis) -> None:
    token = "t" * 40
    s = media_settings(settings, ops_token=token)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{s.media_url}/health") as resp:
                assert resp.status == 401
                assert "calls_detail" not in await resp.text()
            async with http.get(f"{s.media_url}/health",
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200 and "calls_detail" in await resp.json()
            async with http.get(f"{s.media_url}/healthz") as resp:
                assert resp.status == 200 and await resp.json() == {"ok": True}
    finally:
        await server.close()
    from core.records import make_engine

    engine = make_engine(s.database_url)
    hub = Hub(replace(s, media_verify_processes=0), redis, engine)
    (s.storage_root / "scans").mkdir(parents=True, exist_ok=True)
    (s.storage_root / "scans" / "a.jpg").write_bytes(b"x")
    assert hub.thumb_path("scans/a.jpg") is not None
    assert hub.thumb_path("../../../etc/passwd") is None
    await engine.dispose()

"""监看: a supervisor watches a live call receive-only, with real aiortc peers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from core.jointoken import JoinClaims, mint
from core.qa_tables import call_events
from core.records import audit_log, make_engine
from media.app import HUB
from signaling.app import create_app
from tests.media.conftest import Worker
from tests.media.peers import BLUE, GREEN, RED, Line, ToneTrack, colour_track, join, until
from tests.media.test_call import near
from tests.media.test_signaling_call import _call, _join_media
from tests.signaling.peers import fast
from tests.signaling.test_ops_supervisor import login

WATCH = "/api/supervisor/calls/{}/watch"


def watcher_lines() -> list[Line]:
    """Every source of the call; the first m-line also tries to send (it must be ignored)."""
    return [("video", colour_track(BLUE), True), ("video", None, True), ("video", None, True),
            ("video", None, True), ("audio", ToneTrack(700), True), ("audio", None, True),
            ("audio", None, True)]


@pytest.fixture
async def signaling(worker: Worker) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(worker.settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def test_a_supervisor_watches_and_the_clerk_sees_it(
    worker: Worker, signaling: TestServer
) -> None:
    term, clerk, call_t, call_c = await _call(signaling)
    terminal, clerk_media = await _join_media(call_t, call_c)
    call_id = call_c["call_id"]
    sup = await login(signaling, "duty1")
    watcher = None
    try:
        await until(lambda: near(clerk_media.received[0].mean_colour(), RED), what="face")
        resp = await sup.post(WATCH.format(call_id))
        assert resp.status == 200, await resp.text()
        granted = await resp.json()
        media = granted["media"]
        assert media["role"] == "watcher" and granted["terminal_name"]
        watcher = await join(media["worker_url"], call_id, media["token"], watcher_lines())
        # The watcher sees the applicant's face and the clerk's camera.
        await until(lambda: near(watcher.received[0].mean_colour(), RED), what="face")
        await until(lambda: near(watcher.received[2].mean_colour(), GREEN), what="clerk")
        told = await clerk.recv("call_watching", timeout=10)
        assert told == {"type": "call_watching", "call_id": call_id,
                        "watchers": ["值班长 孙敏"]}
        # What the watcher tried to send reaches nobody: the clerk still sees the face.
        seen = clerk_media.received[0].count
        await until(lambda: clerk_media.received[0].count > seen + 15, what="more frames")
        assert near(clerk_media.received[0].mean_colour(), RED)
        assert near(terminal.received[0].mean_colour(), GREEN)
        # The watcher leaves: the clerk is told, the call goes on.
        async with aiohttp.ClientSession() as http, http.post(
            f"{media['worker_url']}/calls/{call_id}/leave",
            headers={"Authorization": f"Bearer {media['token']}"},
        ) as left:
            assert left.status == 200, await left.text()
        await clerk.recv("call_watching", timeout=10, watchers=[])
        assert await clerk.quiet("call_ended", 2.5) == []
        seen = clerk_media.received[0].count
        await until(lambda: clerk_media.received[0].count > seen + 15, what="call goes on")
    finally:
        if watcher is not None:
            await watcher.close()
        await terminal.close()
        await clerk_media.close()
        for peer in (term, clerk):
            await peer.close()
        await sup.close()
    engine = make_engine(worker.settings.database_url)
    async with engine.connect() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.subject == call_id))).all()
        joined = (await conn.execute(select(call_events.c.actor).where(
            call_events.c.call_id == call_id, call_events.c.kind == "joined"))).scalars().all()
    await engine.dispose()
    assert ("call_watch_start", "duty1") in actions and ("call_watch_end", "duty1") in actions
    assert "watcher" not in joined  # not a participant of the call's record


async def test_only_admins_and_supervisors_watch_and_only_live_calls(
    worker: Worker, signaling: TestServer
) -> None:
    term, clerk, _, call_c = await _call(signaling)
    call_id = call_c["call_id"]
    sup = await login(signaling, "admin")
    try:
        for client in (clerk.client, term.client):
            resp = await client.post(WATCH.format(call_id))
            assert resp.status == 403, await resp.text()
        await clerk.send(type="end_call", call_id=call_id)
        await clerk.recv("call_ended")
        resp = await sup.post(WATCH.format(call_id))
        assert resp.status == 410, await resp.text()
        assert (await resp.json())["error"]["code"] == "call_ended"
    finally:
        for peer in (term, clerk):
            await peer.close()
        await sup.close()


async def test_a_watcher_never_starts_a_call_on_a_worker(worker: Worker) -> None:
    now = time.time()
    token = mint(worker.settings.join_token_secret,
                 JoinClaims("call-nobody", "watch-duty1", "watcher", now + 60, issued_at=now))
    with pytest.raises(RuntimeError, match="call_not_live"):
        await join(worker.url, "call-nobody", token, watcher_lines())
    assert "call-nobody" not in worker.server.app[HUB].calls


async def test_a_watcher_whose_connection_is_lost_is_no_longer_shown(
    worker: Worker, signaling: TestServer
) -> None:
    term, clerk, call_t, call_c = await _call(signaling)
    terminal, clerk_media = await _join_media(call_t, call_c)
    call_id = call_c["call_id"]
    sup = await login(signaling, "admin")
    try:
        media = (await (await sup.post(WATCH.format(call_id))).json())["media"]
        watcher = await join(media["worker_url"], call_id, media["token"], watcher_lines())
        await until(lambda: near(watcher.received[0].mean_colour(), RED), what="face")
        await clerk.recv("call_watching", timeout=10, watchers=["系统管理员"])
        await watcher.close()  # no hang-up: the page was closed
        await clerk.recv("call_watching", timeout=40, watchers=[])
        assert await clerk.quiet("call_ended", 2.5) == []
    finally:
        await terminal.close()
        await clerk_media.close()
        for peer in (term, clerk):
            await peer.close()
        await sup.close()

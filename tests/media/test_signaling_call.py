"""Calls set up through the real signaling app: media join info, ending, a worker dying."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from core.media_tables import media_calls
from core.records import make_engine
from core.settings import ROOT, Settings
from signaling.app import create_app
from testkit.localstack import free_port, wait_http
from tests.media.conftest import Worker, media_settings
from tests.media.peers import (
    GREEN,
    RED,
    Peer,
    ToneTrack,
    clerk_lines,
    colour_track,
    document_track,
    join,
    terminal_lines,
    until,
)
from tests.media.test_call import near, probe, tone
from tests.signaling.peers import Peer as WsPeer
from tests.signaling.peers import connect_clerk, connect_terminal, fast


async def _call(server: TestServer) -> tuple[WsPeer, WsPeer, dict[str, Any], dict[str, Any]]:
    clerk = await connect_clerk(server)
    term = await connect_terminal(server)
    await term.send(type="join_queue", item_code="DB-SQ")
    offer = await clerk.recv("offer")
    await clerk.send(type="accept_offer", offer_id=offer["offer_id"])
    call_c = await clerk.recv("call_assigned")
    call_t = await term.recv("call_assigned")
    return term, clerk, call_t, call_c


async def _join_media(call_t: dict[str, Any], call_c: dict[str, Any]) -> tuple[Peer, Peer]:
    mt, mc = call_t["media"], call_c["media"]
    assert mt is not None and mc is not None, "signaling found no media worker"
    assert mt["role"] == "terminal" and mc["role"] == "clerk" and mt["ice_servers"] == []
    terminal = await join(mt["worker_url"], mt["call_id"], mt["token"], terminal_lines(
        colour_track(RED), document_track(), ToneTrack(440)))
    clerk = await join(mc["worker_url"], mc["call_id"], mc["token"], clerk_lines(
        colour_track(GREEN), ToneTrack(1000)))
    return terminal, clerk


@pytest.fixture
async def signaling(worker: Worker) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(fast(worker.settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def test_call_through_signaling_ends_when_the_terminal_is_gone(
    worker: Worker, signaling: TestServer
) -> None:
    term, clerk, call_t, call_c = await _call(signaling)
    terminal, clerk_media = await _join_media(call_t, call_c)
    try:
        await until(lambda: near(clerk_media.received[0].mean_colour(), RED), what="face")
        await until(lambda: tone(clerk_media.received[3], 440), what="terminal tone")
        await until(lambda: near(terminal.received[0].mean_colour(), GREEN), what="clerk")
        await until(lambda: tone(terminal.received[2], 1000), what="clerk tone")
        # The kiosk loses its media connection; past the grace period the call ends.
        await terminal.close()
        ended = await clerk.recv("call_ended", timeout=worker.settings.media_grace_s + 8)
        assert ended["reason"] == "participant_gone"
        await clerk.recv("clerk_state", state="wrap_up")
    finally:
        await clerk_media.close()
        await term.close()
        await clerk.close()
    engine = make_engine(worker.settings.database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(media_calls).where(
            media_calls.c.call_id == call_c["call_id"]))).one()
    await engine.dispose()
    assert row.state == "ended" and row.recording_ended_at is not None


@pytest.fixture
def worker_process(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A media worker in its own process, so the test can kill -9 it."""
    s = media_settings(settings, media_segment_s=2.0, media_worker_id="media-subprocess")
    env = {
        **os.environ, "REDIS_URL": s.redis_url, "DATABASE_URL": s.database_url,
        "STORAGE_ROOT": str(s.storage_root), "MEDIA_LISTEN_PORT": str(s.media_port),
        "MEDIA_ICE_HOSTS": "127.0.0.1", "MEDIA_WORKER_ID": s.media_id,
        "JOIN_TOKEN_SECRET": s.join_token_secret, "MEDIA_SEGMENT_S": "2",
        "RUN_MODE": "local",
    }
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "media"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            yield s
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


async def test_killed_worker_fails_its_calls_and_keeps_written_segments(
    worker_process: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    s = worker_process
    await asyncio.to_thread(wait_http, f"{s.media_url}/health", 30,
                            what=f"the worker (log: {tmp_path / 'worker.log'})")
    srv = TestServer(create_app(fast(replace(s, port=free_port()))))
    await srv.start_server()
    term, clerk, call_t, call_c = await _call(srv)
    terminal, clerk_media = await _join_media(call_t, call_c)
    try:
        await until(lambda: near(clerk_media.received[0].mean_colour(), RED), what="face")
        folder = s.storage_root / "recordings" / call_c["call_id"]
        # One closed segment and fragments of the open one are on disk.
        second = folder / "0001.mp4"
        await until(lambda: second.exists() and second.stat().st_size > 20000,
                    what="segments on disk")
        pid = int((await redis.hget(f"vw:media:worker:{s.media_id}", "pid")) or 0)
        assert pid > 0
        os.kill(pid, signal.SIGKILL)
        # Both sides are told within 10 s (heartbeat TTL + one watcher pass).
        ended_c, ended_t = await asyncio.gather(clerk.recv("call_ended", timeout=10),
                                                term.recv("call_ended", timeout=10))
        assert ended_c["reason"] == ended_t["reason"] == "media_failed"
    finally:
        # Closing peers of a killed worker must not hang the test: each close is bounded.
        for closing in (terminal.close(), clerk_media.close(), term.close(), clerk.close(),
                        srv.close()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing, 15)
    paths = sorted(folder.glob("*.mp4"))
    assert len(paths) >= 2
    for path in paths[:2]:
        info = probe(path)
        streams = {st["codec_type"] for st in info["streams"]}  # type: ignore[attr-defined]
        assert streams == {"video", "audio"}, path
        assert float(info["format"]["duration"]) >= 1.0  # type: ignore[index]
    engine = make_engine(s.database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(media_calls).where(
            media_calls.c.call_id == call_c["call_id"]))).one()
    await engine.dispose()
    assert row.state == "failed"

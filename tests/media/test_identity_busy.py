"""A worker whose verification pool is full says so: the check waits in line a while, then
ends with the reason on both sides instead of slowing every call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from core.clock import wall
from core.records import make_engine
from core.settings import Settings
from media.app import HUB, create_app
from media.identity import IdentityTimes
from media.verification_pool import PoolBusy
from signaling.placement import CallStart, WorkerPlacement
from tests.media.conftest import Worker, media_settings
from tests.media.identity_peers import Notices, ScriptedTrack, desk_frame
from tests.media.peers import ToneTrack, clerk_lines, colour_track, join, terminal_lines, until

CALL = "call-id-busy"


@pytest.fixture
async def small_pool_worker(settings: Settings, redis: aioredis.Redis
                            ) -> AsyncIterator[Worker]:
    s = media_settings(settings, media_verify_processes=1, media_verify_queue=1,
                       media_record=False)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    try:
        yield Worker(s, server)
    finally:
        await server.close()


@pytest.fixture
async def placement(small_pool_worker: Worker, redis: aioredis.Redis
                    ) -> AsyncIterator[WorkerPlacement]:
    engine = make_engine(small_pool_worker.settings.database_url)
    http = aiohttp.ClientSession()
    try:
        yield WorkerPlacement(small_pool_worker.settings, redis, engine, http, wall)
    finally:
        await http.close()
        await engine.dispose()


async def test_a_full_pool_ends_the_check_with_its_reason_on_both_sides(
        small_pool_worker: Worker, placement: WorkerPlacement, redis: aioredis.Redis) -> None:
    hub = small_pool_worker.server.app[HUB]
    pool = hub.pool
    assert pool is not None
    hub.identity.times = IdentityTimes(queue_s=1.0, busy_wait_s=0.2)
    joins = await placement.start_call(CallStart(
        call_id=CALL, ticket_id=f"t-{CALL}", item_code="HOUSE", terminal_id="T-busy",
        terminal_name="青山村便民服务点", clerk_username="clerk-id", clerk_name="王晓梅"))
    term, clerk = joins["T-busy"], joins["clerk-id"]
    assert term is not None and clerk is not None
    peers = [await join(small_pool_worker.url, CALL, term.token, terminal_lines(
        colour_track((200, 30, 30)), ScriptedTrack([desk_frame()], fps=10), ToneTrack(440))),
        await join(small_pool_worker.url, CALL, clerk.token, clerk_lines(
            colour_track((30, 200, 30)), ToneTrack(1000)))]
    # Someone else's long job holds the only place in the pool's queue.
    hog = asyncio.ensure_future(pool.run(time.sleep, 6.0))
    try:
        await until(lambda: pool.pending == 1, 5, "the pool full")
        await until(lambda: hub.calls.get(CALL) is not None
                    and hub.calls[CALL].capture.snapshot(), 15, "document frames")
        async with Notices(redis) as notices:
            started = await placement.call_action(CALL, "identity.start", "clerk-id", {})
            assert "verification_id" in started, started
            await until(lambda: notices.result() is not None
                        and notices.of("identity_done", "terminal:"), 20, "both sides told")
        result = notices.result()
        assert result is not None and result["state"] == "aborted"
        assert result["reasons"] == [PoolBusy.message]
        assert notices.of("identity_done", "terminal:")[-1]["message"] == PoolBusy.message
    finally:
        await hog
        for peer in peers:
            await peer.close()
        await placement.stop_call(CALL, "hangup")

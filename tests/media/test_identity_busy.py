"""A worker whose verification pool is full says so: the check waits in line a while (both
sides are told it waits), then ends with the reason on both sides instead of slowing every
call."""

from __future__ import annotations

import asyncio
import contextlib
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
from media.hub import Hub
from media.identity import WAIT_TEXT, IdentityTimes
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


@contextlib.asynccontextmanager
async def _call_beside_a_hog(worker: Worker, placement: WorkerPlacement, call_id: str,
                             hog_s: float) -> AsyncIterator[Hub]:
    """A call with a desk on the document camera, while someone else's job of `hog_s`
    holds the only place in the pool's queue."""
    hub = worker.server.app[HUB]
    pool = hub.pool
    assert pool is not None
    terminal = f"T-{call_id}"
    joins = await placement.start_call(CallStart(
        call_id=call_id, ticket_id=f"t-{call_id}", item_code="HOUSE", terminal_id=terminal,
        terminal_name="青山村便民服务点", clerk_username="clerk-id", clerk_name="王晓梅"))
    term, clerk = joins[terminal], joins["clerk-id"]
    assert term is not None and clerk is not None
    peers = [await join(worker.url, call_id, term.token, terminal_lines(
        colour_track((200, 30, 30)), ScriptedTrack([desk_frame()], fps=10), ToneTrack(440))),
        await join(worker.url, call_id, clerk.token, clerk_lines(
            colour_track((30, 200, 30)), ToneTrack(1000)))]
    hog = asyncio.ensure_future(pool.run(time.sleep, hog_s))
    try:
        await until(lambda: pool.pending == 1, 5, "the pool full")
        await until(lambda: hub.calls.get(call_id) is not None
                    and hub.calls[call_id].capture.snapshot(), 15, "document frames")
        yield hub
    finally:
        await hog
        for peer in peers:
            await peer.close()
        await placement.stop_call(call_id, "hangup")



async def test_a_full_pool_ends_the_check_with_its_reason_on_both_sides(
        small_pool_worker: Worker, placement: WorkerPlacement, redis: aioredis.Redis) -> None:
    async with _call_beside_a_hog(small_pool_worker, placement, CALL, 6.0) as hub:
        hub.identity.times = IdentityTimes(queue_s=1.0, busy_wait_s=0.2)
        async with Notices(redis) as notices:
            started = await placement.call_action(CALL, "identity.start", "clerk-id", {})
            assert "verification_id" in started, started
            await until(lambda: notices.result() is not None
                        and notices.of("identity_done", "terminal:"), 20, "both sides told")
        result = notices.result()
        assert result is not None and result["state"] == "aborted"
        assert result["reasons"] == [PoolBusy.message]
        assert notices.of("identity_done", "terminal:")[-1]["message"] == PoolBusy.message
        for side in ("terminal:", "clerk:"):
            waiting = [m for m in notices.of("identity_step", side) if m.get("waiting")]
            assert waiting and waiting[0]["guidance"] == WAIT_TEXT, notices.of(
                "identity_step", side)


async def test_a_check_that_waited_in_line_goes_on_when_the_pool_frees(
        small_pool_worker: Worker, placement: WorkerPlacement, redis: aioredis.Redis) -> None:
    call = f"{CALL}-2"
    async with _call_beside_a_hog(small_pool_worker, placement, call, 2.0) as hub:
        hub.identity.times = IdentityTimes(queue_s=20.0, busy_wait_s=0.2)
        async with Notices(redis) as notices:
            started = await placement.call_action(call, "identity.start", "clerk-id", {})
            assert "verification_id" in started, started

            def resumed() -> bool:
                steps = notices.of("identity_step", "terminal:")
                firsts = [i for i, m in enumerate(steps) if m.get("waiting")]
                return bool(firsts) and any(not m.get("waiting") for m in steps[firsts[0]:])

            await until(resumed, 20, "the check going on after its wait")
            # The card step goes on: the applicant is asked for the card again, not told a
            # reason to stop.
            assert notices.result() is None
            steps = notices.of("identity_step", "terminal:")
            assert steps[-1]["step"] == "card" and not steps[-1]["waiting"]

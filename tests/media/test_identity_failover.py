"""A worker that goes away during a check: both sides are told, and the retry runs on the
worker that takes the call over (real workers, aiortc peers, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from sqlalchemy import insert, select

from core.identity_tables import identity_checks
from core.records import make_engine
from core.settings import Settings
from media.app import create_app
from media.identity import REASON_WORKER_LOST
from signaling.placement import CallStart, WorkerPlacement
from testkit.synth_id import RGB
from tests.media.conftest import Worker, media_settings
from tests.media.identity_peers import Face, Notices, ScriptedTrack, desk_frame
from tests.media.peers import (
    Peer,
    ToneTrack,
    clerk_lines,
    colour_track,
    join,
    terminal_lines,
    until,
)
from tests.media.test_identity import checking_worker, faces_dir, people, placing  # noqa: F401

CALL = "call-id-failover"
TERMINAL = f"T-{CALL}"


def _aborted(notices: Notices, verification_id: str) -> bool:
    clerk = [r for r in notices.of("identity_result", "clerk:")
             if r["verification_id"] == verification_id and r["state"] == "aborted"]
    kiosk = [d for d in notices.of("identity_done", "terminal:")
             if d["verification_id"] == verification_id and not d["finished"]]
    return bool(clerk and kiosk)


async def _peers(url: str, token: Any, face: ScriptedTrack, document: ScriptedTrack
                 ) -> list[Peer]:
    terminal = await join(url, CALL, token(TERMINAL, "terminal"),
                          terminal_lines(face, document, ToneTrack(440)))
    clerk = await join(url, CALL, token("clerk-id", "clerk"),
                       clerk_lines(colour_track((30, 200, 30)), ToneTrack(1000)))
    return [terminal, clerk]


async def test_a_worker_gone_mid_check_tells_both_sides_and_the_retry_runs_on_the_next(
        checking_worker: Worker, placing: WorkerPlacement,  # noqa: F811
        settings: Settings, redis: aioredis.Redis, people: dict[str, RGB]) -> None:  # noqa: F811
    face = Face.of(people["obama.jpg"])
    start = CallStart(
        call_id=CALL, ticket_id=f"t-{CALL}", item_code="HOUSE", terminal_id=TERMINAL,
        terminal_name="青山村便民服务点", clerk_username="clerk-id", clerk_name="王晓梅")
    joins = await placing.start_call(start)
    term, clerk = joins[TERMINAL], joins["clerk-id"]
    assert term is not None and clerk is not None
    # The card never comes: the check is still looking for it when the worker goes.
    peers = [await join(checking_worker.url, CALL, term.token, terminal_lines(
        ScriptedTrack(face.neutral), ScriptedTrack([desk_frame()], fps=10), ToneTrack(440))),
        await join(checking_worker.url, CALL, clerk.token, clerk_lines(
            colour_track((30, 200, 30)), ToneTrack(1000)))]
    other = media_settings(settings, media_verify_processes=1, media_record=False)
    server_b = TestServer(create_app(other), host="127.0.0.1", port=other.media_port)
    engine = make_engine(settings.database_url)
    try:
        async with Notices(redis) as notices:
            started = await placing.call_action(CALL, "identity.start", "clerk-id", {})
            first = started["verification_id"]
            await until(lambda: notices.of("identity_step"), 30, "the first step")
            await checking_worker.server.close()  # the worker stops during the check
            await until(lambda: _aborted(notices, first), 20, "both sides told")
            result = [r for r in notices.of("identity_result", "clerk:")
                      if r["verification_id"] == first][-1]
            assert result["reasons"] == [REASON_WORKER_LOST]

            # Another attempt was left running by a worker that died without a word.
            async with engine.begin() as conn:
                await conn.execute(insert(identity_checks).values(
                    verification_id="v-crashed", call_id=CALL, terminal_id=TERMINAL,
                    clerk="clerk-id", attempt=2, state="running"))
            for peer in peers:
                await peer.close()

            # The call moves to the next worker, as signaling moves it off a dead one; the
            # peers join it there.
            await server_b.start_server()
            moved = await placing.move_call(start, {TERMINAL: "terminal", "clerk-id": "clerk"},
                                            checking_worker.settings.media_id)
            assert moved is not None and moved[TERMINAL].worker_url == other.media_url
            peers = await _peers(other.media_url, lambda pid, role: moved[pid].token,
                                 ScriptedTrack(face.neutral),
                                 ScriptedTrack([desk_frame()], fps=10))
            await until(lambda: _aborted(notices, "v-crashed"), 20, "the crashed attempt told")
            retry = await placing.call_action(CALL, "identity.start", "clerk-id", {})
            assert retry["attempt"] == 3 and retry["attempts_left"] == 0, retry
            await until(lambda: any(s["verification_id"] == retry["verification_id"]
                                    for s in notices.of("identity_step", "terminal:")),
                        30, "the retry's first step at the kiosk")
        async with engine.connect() as conn:
            states = dict((await conn.execute(select(
                identity_checks.c.verification_id, identity_checks.c.state).where(
                identity_checks.c.call_id == CALL))).all())
        assert states[first] == "aborted" and states["v-crashed"] == "aborted"
    finally:
        for peer in peers:
            await peer.close()
        await server_b.close()
        await engine.dispose()

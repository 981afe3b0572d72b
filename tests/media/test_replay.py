"""Replays on a real worker: a real call ends sealed, and its recording comes back rendered
for one viewer, with the viewer's name in the picture, from any moment, only with a
valid ticket; the original segments are never what is sent."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import av
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from core import jointoken
from core.evidence import Integrity, SealFacts, SegmentRecord, check_recording, file_sha256
from core.media_tables import recording_segments
from core.qa_tables import call_events, recording_seals
from core.records import make_engine
from core.replayticket import ReplayClaims, mint
from core.settings import Settings
from media.app import create_app
from media.replay import CODECS
from media.viewer_mark import ViewerMark
from signaling.placement import WorkerPlacement
from testkit.recordings import make_recorded_call
from tests.media.conftest import Worker, media_settings
from tests.media.peers import RED, until
from tests.media.test_call import _two_party, near
from tests.qa.marks import name_similarity

VIEWER = ViewerMark("质检员 赵磊", "qa1")
OTHER = ViewerMark("审计员 王五", "audit9")


def ticket(worker: Worker, call_id: str, kind: str = "replay", ttl: float = 60.0,
           viewer: ViewerMark = VIEWER) -> str:
    return mint(worker.settings.join_token_secret, ReplayClaims(
        call_id, 1, viewer.viewer, viewer.viewer_name, kind,  # type: ignore[arg-type]
        time.time() + ttl))


async def fetch(worker: Worker, token: str | None, start: float = 0.0,
                origin: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if origin:
        headers["Origin"] = origin
    async with aiohttp.ClientSession() as http, http.get(
            f"{worker.url}/replay/stream", params={"from": str(start)},
            headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def decode(data: bytes) -> list[Any]:
    with av.open(io.BytesIO(data), mode="r") as container:
        return list(container.decode(video=0))


async def test_a_real_call_is_sealed_and_replays_with_the_viewers_name(
        worker: Worker, placement: WorkerPlacement) -> None:
    call_id = "call-replay-1"
    terminal, clerk, _, _ = await _two_party(worker, placement, call_id, "T-9", "clerk-r")
    try:
        await until(lambda: near(clerk.received[0].mean_colour(), RED), what="face at clerk")
        await asyncio.sleep(2.5)  # more than one 2 s segment
    finally:
        await placement.stop_call(call_id, "hangup")
        for peer in (terminal, clerk):
            await peer.close()
    async with placement.engine.connect() as conn:
        rows = (await conn.execute(select(recording_segments).where(
            recording_segments.c.call_id == call_id).order_by(recording_segments.c.seq))).all()
        seal = (await conn.execute(select(recording_seals).where(
            recording_seals.c.call_id == call_id))).mappings().one()
        joined = (await conn.execute(select(call_events.c.actor).where(
            call_events.c.call_id == call_id, call_events.c.kind == "joined"))).scalars().all()
    assert sorted(joined) == ["clerk", "terminal"]
    assert seal["segments"] == len(rows) >= 2 and seal["final_chain_hash"] == rows[-1].chain_hash
    keys = worker.settings.evidence_keys
    assert keys.check(seal["content"], seal["signature"], seal["key_id"])
    root = worker.settings.storage_root
    report = check_recording(
        [SegmentRecord(r.seq, r.sha256, r.prev_hash, r.chain_hash) for r in rows],
        {r.seq: file_sha256(root / r.path) for r in rows},
        SealFacts(seal["segments"], seal["final_chain_hash"], True), ended=True)
    assert report.state == Integrity.INTACT

    status, headers, data = await fetch(worker, ticket(worker, call_id, "download"))
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert float(headers["X-Replay-Start"]) == 0.0 and headers["X-Replay-Codecs"] == CODECS
    originals = {hashlib.sha256((root / r.path).read_bytes()).hexdigest() for r in rows}
    assert hashlib.sha256(data).hexdigest() not in originals
    frames = decode(data)
    # Every recorded picture is in the replay (a loaded machine may have recorded fewer
    # than 15 a second: count what the segments hold, not what the clock says).
    recorded = sum(len(decode((root / r.path).read_bytes())) for r in rows)
    assert len(frames) >= 0.8 * recorded
    luma = frames[len(frames) // 2].to_ndarray(format="gray")
    mine, other = name_similarity(luma, VIEWER), name_similarity(luma, OTHER)
    assert mine > 0.5 and mine > other + 0.25, (mine, other)
    # The picture is still the call's: the applicant's red face fills the face area.
    rgb = frames[len(frames) // 2].to_ndarray(format="rgb24")[100:400, 100:600]
    assert near(tuple(float(c) for c in rgb.reshape(-1, 3).mean(axis=0)), RED)  # type: ignore[arg-type]


async def test_a_replay_starts_at_the_key_frame_before_the_asked_moment(
        worker: Worker) -> None:
    engine = make_engine(worker.settings.database_url)
    try:
        call = await make_recorded_call(engine, worker.settings.storage_root,
                                        worker.settings.evidence_keys, seconds=6, segment_s=2)
        status, headers, data = await fetch(worker, ticket(worker, call.call_id), start=3.5)
        assert status == 200
        start = float(headers["X-Replay-Start"])
        assert 2.4 <= start <= 3.5  # a key frame a second, segments of 2 s
        frames = decode(data)
        assert 0.8 * (6 - start) * 15 <= len(frames) <= (6 - start) * 15 + 2
        assert frames[0].key_frame
        # The page's origin may read the start; another origin gets no CORS grant.
        origin = worker.settings.base_url
        _, allowed, _ = await fetch(worker, ticket(worker, call.call_id), 5.0, origin)
        assert allowed["Access-Control-Allow-Origin"] == origin
        assert "X-Replay-Start" in allowed["Access-Control-Expose-Headers"]
        _, foreign, _ = await fetch(worker, ticket(worker, call.call_id), 5.0,
                                    "http://evil.example")
        assert "Access-Control-Allow-Origin" not in foreign
    finally:
        await engine.dispose()


async def test_no_valid_ticket_no_picture(worker: Worker) -> None:
    secret = worker.settings.join_token_secret
    join = jointoken.mint(secret, jointoken.JoinClaims("c", "qa1", "clerk", time.time() + 60))
    for token, code in ((None, "missing_ticket"), ("rt1.bad.ticket", "bad_ticket"),
                        (join, "bad_ticket"),
                        (ticket(worker, "nosuch", ttl=-1), "expired_ticket")):
        status, _, body = await fetch(worker, token)
        assert status == 401 and code.encode() in body
    status, _, body = await fetch(worker, ticket(worker, "no-such-call"))
    assert status == 404 and "没有可回放的录像" in body.decode()


@pytest.fixture
async def full_worker(settings: Settings) -> AsyncIterator[Worker]:
    s = media_settings(settings, qa_replay_max_viewers=0)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    try:
        yield Worker(replace(s), server)
    finally:
        await server.close()


async def test_a_worker_at_its_limit_says_so(full_worker: Worker) -> None:
    status, _, body = await fetch(full_worker, ticket(full_worker, "any"))
    assert status == 503 and "回放的人数已满" in body.decode()
    async with aiohttp.ClientSession() as http, http.get(f"{full_worker.url}/health") as resp:
        assert (await resp.json())["replays"]["refused"] == 1


@pytest.fixture
async def one_seat_worker(settings: Settings) -> AsyncIterator[Worker]:
    s = media_settings(settings, qa_replay_max_viewers=1)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    try:
        yield Worker(s, server)
    finally:
        await server.close()


async def test_a_viewer_who_leaves_frees_the_seat(one_seat_worker: Worker) -> None:
    worker = one_seat_worker
    engine = make_engine(worker.settings.database_url)
    try:
        call = await make_recorded_call(engine, worker.settings.storage_root,
                                        worker.settings.evidence_keys, seconds=20, segment_s=5)
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {ticket(worker, call.call_id)}"}
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{worker.url}/replay/stream", headers=headers)
        assert resp.status == 200
        await resp.content.read(4096)  # watching, paced to real time
        status, _, _ = await fetch(worker, ticket(worker, call.call_id))
        assert status == 503  # the one seat is taken
        resp.close()  # the viewer closes the page

        for _ in range(100):  # well within the worker's look every quarter second
            async with http.get(f"{worker.url}/health") as h:
                if int((await h.json())["replays"]["active"]) == 0:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the seat was never freed")
    status, headers_back, _ = await fetch(worker, ticket(worker, call.call_id), start=18.0)
    assert status == 200 and float(headers_back["X-Replay-Start"]) >= 15.0

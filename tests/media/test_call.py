"""A call on a real worker with real aiortc peers: relay, three parties, capture, recording."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from PIL import Image
from sqlalchemy import select

from core import keys
from core.jointoken import JoinClaims, mint
from core.media_tables import media_calls, recording_segments, scans
from core.messages import MediaJoin
from media.composite import WATERMARK_BOX, Watermark, render_watermark
from media.recording import verify_chain
from signaling.placement import CallStart, WorkerPlacement
from tests.media.conftest import Worker
from tests.media.peers import (
    BLUE,
    GREEN,
    RED,
    TAG,
    Peer,
    Received,
    ToneTrack,
    clerk_lines,
    colour_track,
    document_track,
    join,
    terminal_lines,
    until,
)

TERMINAL_NAME = "青山村便民服务点"
CLERK_NAME = "王晓梅"


def near(colour: tuple[float, float, float] | None, want: tuple[int, int, int]) -> bool:
    return colour is not None and all(abs(c - w) < 40 for c, w in zip(colour, want, strict=True))


def looks_like_document(got: Received) -> bool:
    """A checkerboard page: strong contrast across the frame (not a solid colour)."""
    if not got.frames:
        return False
    gray = got.frames[-1].to_ndarray(format="gray")
    return float(gray[TAG:, TAG:].std()) > 30


def tone(got: Received, hz: float) -> bool:
    found = got.dominant_hz()
    return found is not None and abs(found - hz) < 15


def probe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


async def _two_party(worker: Worker, placement: WorkerPlacement, call_id: str, terminal_id: str,
                     clerk_username: str, *, terminal_codec: str | None = None,
                     clerk_codec: str | None = None) -> tuple[Peer, Peer, MediaJoin, MediaJoin]:
    """Signaling places a call; the terminal (red face, document, 440 Hz) and the clerk
    (green camera, 1000 Hz) join it on the worker."""
    joins = await placement.start_call(CallStart(
        call_id=call_id, ticket_id=f"t-{call_id}", item_code="HOUSE", terminal_id=terminal_id,
        terminal_name=TERMINAL_NAME, clerk_username=clerk_username, clerk_name=CLERK_NAME))
    term_join, clerk_join = joins[terminal_id], joins[clerk_username]
    assert term_join is not None and clerk_join is not None
    terminal = await join(worker.url, call_id, term_join.token, terminal_lines(
        colour_track(RED), document_track(), ToneTrack(440)), video_codec=terminal_codec)
    clerk = await join(worker.url, call_id, clerk_join.token, clerk_lines(
        colour_track(GREEN), ToneTrack(1000)), video_codec=clerk_codec)
    return terminal, clerk, term_join, clerk_join


async def test_call_relays_captures_and_records(worker: Worker,
                                                 placement: WorkerPlacement) -> None:
    call_id = "call-media-1"
    started = time.time()
    terminal, clerk, term_join, clerk_join = await _two_party(
        worker, placement, call_id, "T-1", "clerk-a")
    assert term_join.worker_url == worker.url and term_join.role == "terminal"
    peers: list[Peer] = [terminal, clerk]
    try:
        # The clerk sees the face and the document and hears the applicant; and back.
        await until(lambda: near(clerk.received[0].mean_colour(), RED), what="face at clerk")
        await until(lambda: looks_like_document(clerk.received[1]), what="document at clerk")
        await until(lambda: tone(clerk.received[3], 440), what="terminal tone at clerk")
        await until(lambda: near(terminal.received[0].mean_colour(), GREEN),
                    what="clerk at terminal")
        await until(lambda: tone(terminal.received[2], 1000), what="clerk tone at terminal")

        # A second clerk joins the same call (三方连线).
        second_join = await placement.join_for(call_id, "clerk-b", "clerk")
        assert second_join is not None and second_join.role == "second_clerk"
        second = await join(worker.url, call_id, second_join.token, clerk_lines(
            colour_track(BLUE), ToneTrack(700)))
        peers.append(second)
        await until(lambda: near(second.received[0].mean_colour(), RED), what="face at 2nd")
        await until(lambda: near(clerk.received[2].mean_colour(), BLUE), what="2nd at clerk")
        await until(lambda: near(terminal.received[1].mean_colour(), BLUE),
                    what="2nd at terminal")
        await until(lambda: tone(terminal.received[3], 700), what="2nd tone at terminal")

        # Same codec everywhere: every frame went on as its sender encoded it.
        forwarding = (await _health(worker))["calls_detail"][call_id]["forwarding"]
        assert forwarding["passed"] > 0 and forwarding["reencoded"] == 0, forwarding

        await _check_capture(worker, placement, call_id, clerk_join.token)
        # The recording closes a segment (2 s here) before the hang-up closes the next.
        for _ in range(100):
            if (await _health(worker))["calls_detail"][call_id]["recording"]["segments"]:
                break
            await asyncio.sleep(0.1)
    finally:
        hung_up = time.time()
        await placement.stop_call(call_id, "hangup")
        stopped = time.time()
        for peer in peers:
            await peer.close()
    await _check_recording(worker, placement, call_id, started, hung_up, stopped)


async def _health(worker: Worker) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{worker.url}/health") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def test_a_clerk_on_another_video_codec_sees_and_is_seen(
        worker: Worker, placement: WorkerPlacement) -> None:
    """The terminal sends VP8, the clerk's browser only takes H.264: the worker re-encodes
    for the clerk instead of passing VP8 through, and both still see each other."""
    call_id = "call-media-h264"
    terminal, clerk, _, _ = await _two_party(
        worker, placement, call_id, "T-2", "clerk-h",
        terminal_codec="video/VP8", clerk_codec="video/H264")
    try:
        await until(lambda: near(clerk.received[0].mean_colour(), RED), what="face at clerk")
        await until(lambda: looks_like_document(clerk.received[1]), what="document at clerk")
        await until(lambda: near(terminal.received[0].mean_colour(), GREEN),
                    what="clerk at terminal")
        await until(lambda: tone(clerk.received[3], 440), what="terminal tone at clerk")
        forwarding = (await _health(worker))["calls_detail"][call_id]["forwarding"]
        # Video was encoded again for the other codec; the audio (Opus both ways) was not.
        assert forwarding["reencoded"] > 0 and forwarding["passed"] > 0, forwarding
    finally:
        await placement.stop_call(call_id, "hangup")
        for peer in (terminal, clerk):
            await peer.close()


async def _check_capture(worker: Worker, placement: WorkerPlacement, call_id: str,
                         token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{worker.url}/calls/{call_id}/capture", headers=auth) as resp:
            assert resp.status == 201, await resp.text()
            scan = await resp.json()
        async with http.get(scan["thumbnail_url"], headers=auth) as resp:  # never ?token=
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/jpeg"
            Image.open(io.BytesIO(await resp.read())).verify()
        bare = scan["thumbnail_url"].split("?")[0]
        async with http.get(bare) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "missing_token"
    # Signaling can ask on the clerk's behalf (its `capture` intent) and gets the same kind.
    again = await placement.capture_for(call_id, "clerk-a")
    assert again["scan_id"] != scan["scan_id"] and again["width"] == 320
    async with placement.engine.connect() as conn:
        row = (await conn.execute(select(scans).where(scans.c.scan_id == scan["scan_id"]))).one()
    path = worker.settings.storage_root / row.path
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.sha256 == scan["sha256"]
    image = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert image.shape == (240, 320)  # full resolution of the document camera
    # The sharp frames carry a white tag; blurred ones a black tag: the sharpest was kept.
    assert image[4 : TAG - 4, 4 : TAG - 4].mean() > 200


async def _check_recording(worker: Worker, placement: WorkerPlacement, call_id: str,
                           started: float, hung_up: float, stopped: float) -> None:
    async with placement.engine.connect() as conn:
        call = (await conn.execute(
            select(media_calls).where(media_calls.c.call_id == call_id))).one()
        segments = (await conn.execute(
            select(recording_segments).where(recording_segments.c.call_id == call_id)
            .order_by(recording_segments.c.seq))).all()
    assert call.state == "ended" and call.end_reason == "hangup"
    assert len(segments) >= 2
    assert verify_chain([(s.sha256, s.prev_hash, s.chain_hash) for s in segments])
    total = 0.0
    for seg in segments:
        path = worker.settings.storage_root / seg.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == seg.sha256
        info = probe(path)
        kinds = {s["codec_type"]: s["codec_name"] for s in info["streams"]}  # type: ignore[attr-defined]
        assert kinds == {"video": "h264", "audio": "aac"}
        total += float(info["format"]["duration"])  # type: ignore[index]
    recorded_span = (call.recording_ended_at - call.recording_started_at).total_seconds()
    assert abs(total - recorded_span) < 1.0
    # From the first media (after the joins, which take longer on a loaded machine) to the
    # hang-up: never longer than the call, and still running when it was hung up.
    assert total < stopped - started + 0.5
    assert call.recording_ended_at.timestamp() >= hung_up - 0.05
    _check_watermark(worker.settings.storage_root / segments[-1].path,
                     segments[-1].started_at)


def _check_watermark(path: Path, started_at: datetime) -> None:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.pts is not None and frame.time_base is not None
        at = started_at.timestamp() + float(frame.pts * frame.time_base)
        picture = frame.to_ndarray(format="rgb24")
    x, y, w, h = WATERMARK_BOX
    region = picture[y : y + h, x : x + w].astype(np.int16)
    mark = Watermark(case_no="call-media-1", terminal_name=TERMINAL_NAME, clerk_name=CLERK_NAME)

    def diff(lines: tuple[str, ...]) -> float:
        return float(np.abs(region - render_watermark(lines).astype(np.int16)).mean())

    best = min(diff(mark.lines(at + d)) for d in (-1.0, 0.0, 1.0))
    other = diff(Watermark("call-other-9", "别的村服务点", "李四").lines(at))
    assert best < 6.0
    assert other > 2 * best


async def test_bad_or_expired_tokens_are_refused(worker: Worker) -> None:
    secret = worker.settings.join_token_secret
    now = time.time()
    good = JoinClaims("call-x", "T-9", "terminal", now + 60)
    cases = {
        "bad_token": mint("another-secret", good),
        "expired_token": mint(secret, JoinClaims("call-x", "T-9", "terminal", now - 1)),
    }
    async with aiohttp.ClientSession() as http:
        for code, token in cases.items():
            async with http.post(f"{worker.url}/calls/call-x/join",
                                 json={"token": token, "sdp": "v=0"}) as resp:
                assert resp.status == 401
                body = await resp.json()
                assert body["error"]["code"] == code and body["error"]["message"]
        async with http.post(f"{worker.url}/calls/call-other/join",
                             json={"token": mint(secret, good), "sdp": "v=0"}) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "wrong_call"
        async with http.post(f"{worker.url}/calls/call-x/join",
                             json={"token": mint(secret, good), "sdp": "v=0"}) as resp:
            assert resp.status == 400  # a valid token with an unusable offer
            assert (await resp.json())["error"]["code"] == "bad_offer"
        async with http.post(f"{worker.url}/calls/call-x/capture",
                             headers={"Authorization": "Bearer " + mint(secret, good)}) as resp:
            assert resp.status == 403  # a terminal cannot take scans
            assert (await resp.json())["error"]["code"] == "wrong_role"


async def test_terminal_hang_up_ends_the_call_and_tells_signaling(
    worker: Worker, placement: WorkerPlacement
) -> None:
    joins = await placement.start_call(CallStart(
        call_id="call-media-2", ticket_id="t2", item_code="HOUSE", terminal_id="T-2",
        terminal_name=TERMINAL_NAME, clerk_username="clerk-a", clerk_name=CLERK_NAME))
    term_join = joins["T-2"]
    assert term_join is not None
    terminal = await join(worker.url, "call-media-2", term_join.token, terminal_lines(
        colour_track(RED), document_track(), ToneTrack(440)))
    try:
        async with aiohttp.ClientSession() as http, http.post(
            f"{worker.url}/calls/call-media-2/leave",
            headers={"Authorization": f"Bearer {term_join.token}"},
        ) as resp:
            assert resp.status == 200
    finally:
        await terminal.close()
    redis = placement.redis
    event = json.loads(str(await redis.lpop(keys.media_ended())))
    assert event == {"call_id": "call-media-2", "reason": "hangup"}
    # A join after the end is refused in plain words.
    async with aiohttp.ClientSession() as http, http.post(
        f"{worker.url}/calls/call-media-2/join", json={"token": term_join.token, "sdp": "v=0"}
    ) as resp:
        assert resp.status == 410
        assert (await resp.json())["error"]["code"] == "call_ended"

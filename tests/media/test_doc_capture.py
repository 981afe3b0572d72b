"""The capture panel on a real worker with real aiortc peers: guidance, stills, scans.

The kiosk's document camera shows a generated page; its "full-resolution still" is the same
scene at 1080p. A still of the page the worker sees is accepted, flattened and hashed; a
still of another page, a huge upload and a file that is no picture are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
import redis.asyncio as aioredis
from numpy.typing import NDArray
from sqlalchemy import select

from core import keys
from core.document_tables import document_scans
from core.fanout import parse
from core.media_tables import scans
from core.messages import MediaJoin
from core.records import make_engine
from media.app import HUB
from media.doc_capture_http import DOCS
from signaling.placement import CallStart, WorkerPlacement
from testkit.synth_doc import make_frame
from tests.media.conftest import Worker
from tests.media.peers import (
    GREEN,
    RED,
    Peer,
    PictureTrack,
    ToneTrack,
    clerk_lines,
    colour_track,
    join,
    terminal_lines,
    until,
)

LIVE = (640, 360)
STILL = (1920, 1080)


def _scene(seed: int) -> NDArray[np.uint8]:
    return make_frame(np.random.default_rng(seed), "a4", "good").image


def _jpeg(bgr: NDArray[np.uint8], size: tuple[int, int]) -> bytes:
    big = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(data)


class Heard:
    """What the worker published to the call's participants (the fan-out channel)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def of(self, kind: str, target_prefix: str = "") -> list[dict[str, Any]]:
        return [m for t, m in self.messages if m.get("type") == kind
                and t.startswith(target_prefix)]


@dataclass
class DocCall:
    call_id: str
    terminal: Peer
    clerk: Peer
    term: MediaJoin
    clerk_join: MediaJoin
    heard: Heard


@pytest.fixture
async def doc_call(worker: Worker, placement: WorkerPlacement,
                   redis: aioredis.Redis) -> AsyncIterator[DocCall]:
    heard = Heard()
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel())

    async def listen() -> None:
        async for msg in pubsub.listen():
            if msg["type"] == "message":
                _, target, text = parse(msg["data"])
                with contextlib.suppress(ValueError):
                    heard.messages.append((target, json.loads(text)))

    listener = asyncio.create_task(listen())
    call_id = "call-doc-1"
    joins = await placement.start_call(CallStart(call_id, "t-doc", "HOUSE", "T-DOC", "村委会",
                                                 "clerk-d", "李文"))
    term, clerk_join = joins["T-DOC"], joins["clerk-d"]
    assert term is not None and clerk_join is not None
    page = cv2.cvtColor(cv2.resize(_scene(3), LIVE, interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)
    terminal = await join(worker.url, call_id, term.token, terminal_lines(
        colour_track(RED), PictureTrack([np.asarray(page, np.uint8)], [1]), ToneTrack(440)))
    clerk = await join(worker.url, call_id, clerk_join.token, clerk_lines(
        colour_track(GREEN), ToneTrack(1000)))
    hub = worker.server.app[HUB]
    await until(lambda: call_id in hub.calls and len(hub.calls[call_id].capture.snapshot()) > 3,
                what="document frames at the worker")
    try:
        yield DocCall(call_id, terminal, clerk, term, clerk_join, heard)
    finally:
        await terminal.close()
        await clerk.close()
        await placement.stop_call(call_id, "hangup")
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it


def _auth(j: MediaJoin) -> dict[str, str]:
    return {"Authorization": f"Bearer {j.token}"}


async def _post(http: aiohttp.ClientSession, url: str, j: MediaJoin, **kw: Any) -> tuple[
        int, dict[str, Any]]:
    async with http.post(url, headers={**_auth(j), **kw.pop("headers", {})}, **kw) as resp:
        return resp.status, await resp.json()


async def test_a_still_of_the_live_page_is_accepted_flattened_and_hashed(
        worker: Worker, doc_call: DocCall) -> None:
    base = f"{worker.url}/calls/{doc_call.call_id}/documents"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        status, opened = await _post(http, f"{base}/panel", doc_call.clerk_join, json={
            "open": True, "material_code": "form", "material_name": "申请表", "page": 1})
        assert status == 200 and opened["open"]
        # The guidance reaches both sides: the clerk's words and the kiosk's, with the outline.
        await until(lambda: any(g["verdict"] == "ok" and g["outline"]
                                for g in doc_call.heard.of("doc_guidance", "terminal:")),
                    what=lambda: doc_call.heard.of("doc_guidance")[-3:])
        await until(lambda: any(g["words"] == "可以拍了"
                                for g in doc_call.heard.of("doc_guidance", "clerk:")),
                    what="可以拍了 on the console")
        status, asked = await _post(http, f"{base}/take", doc_call.clerk_join)
        assert status == 200
        await until(lambda: doc_call.heard.of("doc_take_still", "terminal:"),
                    what="the kiosk asked for a still")
        status, shot = await _post(
            http, f"{base}/still?take_id={asked['take_id']}", doc_call.term,
            data=_jpeg(_scene(3), STILL), headers={"Content-Type": "image/jpeg"})
        assert status == 201, shot
        assert shot["accepted"] and shot["flat_width"] >= 1600 and not shot["from_video"]
        async with http.get(shot["page_url"], headers=_auth(doc_call.clerk_join)) as resp:
            assert resp.status == 200
            flat = await resp.read()
        await until(lambda: any(r["accepted"] for r in doc_call.heard.of(
            "doc_scan_result", "terminal:")), what="拍好了 on the kiosk")
    engine = make_engine(worker.settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(document_scans).where(
                document_scans.c.scan_id == shot["scan_id"]))).mappings().one()
            scan = (await conn.execute(select(scans).where(
                scans.c.scan_id == shot["scan_id"]))).mappings().one()
    finally:
        await engine.dispose()
    root = worker.settings.storage_root
    original = (root / row["original_path"]).read_bytes()
    assert hashlib.sha256(original).hexdigest() == row["original_sha256"]
    assert hashlib.sha256(flat).hexdigest() == row["flat_sha256"] == scan["sha256"]
    assert (row["material_name"], row["page"], row["source_width"]) == ("申请表", 1, 1920)
    assert scan["call_id"] == doc_call.call_id and row["terminal_id"] == "T-DOC"


async def test_a_still_of_another_page_and_bad_uploads_are_refused(
        worker: Worker, doc_call: DocCall) -> None:
    base = f"{worker.url}/calls/{doc_call.call_id}/documents"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        # No panel, no still: the kiosk cannot send one on its own.
        status, body = await _post(http, f"{base}/still", doc_call.term,
                                   data=_jpeg(_scene(3), STILL))
        assert status == 409 and body["error"]["code"] == "no_panel"
        await _post(http, f"{base}/panel", doc_call.clerk_join, json={
            "open": True, "material_code": "id_card", "material_name": "身份证"})
        # Only a clerk steers the panel.
        status, body = await _post(http, f"{base}/take", doc_call.term)
        assert status == 403
        await _post(http, f"{base}/take", doc_call.clerk_join)
        status, body = await _post(http, f"{base}/still", doc_call.term,
                                   data=_jpeg(_scene(11), STILL))
        assert status == 422 and body["code"] == "not_live"
        assert body["words"] == "照片和视频里看到的材料不一致，请重拍"
        status, body = await _post(http, f"{base}/still", doc_call.term,
                                   data=b"%PDF-1.4 not a photo" * 10)
        assert status == 415 and body["error"]["code"] == "not_image"
        status, body = await _post(http, f"{base}/still", doc_call.term,
                                   data=b"\xff\xd8\xff" + bytes(17 * 1024 * 1024))
        assert status == 413 and body["error"]["code"] == "still_too_large"
        # The console hears the refusal (published before the answer; the fan-out may lag).
        await until(lambda: doc_call.heard.of("doc_scan_result", "clerk:"),
                    what="the refusal on the console")
        results = doc_call.heard.of("doc_scan_result", "clerk:")
        assert not any(r["accepted"] for r in results)
        # A camera that gives only the video size: the video frame is the page, and says so.
        status, body = await _post(http, f"{base}/video-frame", doc_call.term)
        assert status == 201 and body["accepted"] and body["from_video"]
        status, body = await _post(http, f"{base}/panel", doc_call.clerk_join,
                                   json={"open": False})
        assert status == 200 and not body["open"]
    assert worker.server.app[DOCS].panels == {}
    await until(lambda: doc_call.heard.of("doc_panel_closed", "terminal:"),
                what="the kiosk told the panel closed")


async def test_auto_take_asks_the_kiosk_once_the_page_is_good_and_steady(
        worker: Worker, doc_call: DocCall) -> None:
    base = f"{worker.url}/calls/{doc_call.call_id}/documents"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        status, _ = await _post(http, f"{base}/panel", doc_call.clerk_join, json={
            "open": True, "material_code": "form", "material_name": "申请表", "page": 2,
            "auto": True})
        assert status == 200
        await until(lambda: doc_call.heard.of("doc_take_still", "terminal:"),
                    what=lambda: doc_call.heard.of("doc_guidance")[-3:])
        asked = doc_call.heard.of("doc_take_still", "terminal:")[0]
        assert (asked["reason"], asked["material_name"], asked["page"]) == ("auto", "申请表", 2)
        # The kiosk answers with its still; the page is kept as page 2 of 申请表.
        status, shot = await _post(http, f"{base}/still?take_id={asked['take_id']}",
                                   doc_call.term, data=_jpeg(_scene(3), STILL))
        assert status == 201 and shot["accepted"] and shot["page"] == 2
        # One still per take: the same take cannot bring a second picture in.
        status, again = await _post(http, f"{base}/still?take_id={asked['take_id']}",
                                    doc_call.term, data=_jpeg(_scene(3), STILL))
        assert status == 409 and again["error"]["code"] == "no_take"

"""A call's materials, reuse of an earlier scan (证照重复使用), and a case's materials for
reviewers (watermarked pages, one PDF), on the real stores.

The pages are stored as the worker stores them (a `scans` row and a `document_scans` row
with real files); the worker's own part is tested in tests/media/test_doc_capture.py.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys
from core.document_tables import document_scans
from core.media_tables import scans
from core.settings import Settings
from signaling.app import create_app
from signaling.appkeys import CASES, SETTINGS
from testkit.calls import bound_call
from testkit.clock import JumpClock
from testkit.demo import DEMO_PASSWORD
from testkit.synth_doc import render_page
from tests.approval.conftest import ID_NUMBER, submission

TERMINAL = "T-420115-001"


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(replace(settings, public_url="http://127.0.0.1:8080"),
                                clock=JumpClock()))
    await srv.start_server()
    yield srv
    await srv.close()


async def _staff(server: TestServer, username: str) -> ClientSession:
    s = ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
    resp = await s.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    return s


async def _call(redis: aioredis.Redis, engine: AsyncEngine, call_id: str,
                clerk: str = "clerk1") -> None:
    await bound_call(redis, engine, call_id, TERMINAL, clerk)
    await redis.hset(keys.call(call_id), "item_code", "LS-JZ")


async def _page(engine: AsyncEngine, root: Path, call_id: str, scan_id: str, material: str,
                page: int, seed: int) -> None:
    """A flattened page as the worker stores it."""
    flat = render_page(np.random.default_rng(seed))
    ok, data = cv2.imencode(".jpg", flat)
    assert ok
    jpeg = bytes(data)
    folder = root / "scans" / call_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{scan_id}.flat.jpg").write_bytes(jpeg)
    (folder / f"{scan_id}.original.jpg").write_bytes(jpeg)
    digest = hashlib.sha256(jpeg).hexdigest()
    rel = f"scans/{call_id}/{scan_id}.flat.jpg"
    async with engine.begin() as conn:
        await conn.execute(insert(scans).values(
            scan_id=scan_id, call_id=call_id, taken_by="clerk1", path=rel, thumb_path=rel,
            sha256=digest, width=flat.shape[1], height=flat.shape[0], sharpness=100.0))
        await conn.execute(insert(document_scans).values(
            scan_id=scan_id, call_id=call_id, terminal_id=TERMINAL, material_code=material,
            material_name=material, page=page, taken_by="clerk1", uploaded_by=TERMINAL,
            original_path=f"scans/{call_id}/{scan_id}.original.jpg", original_sha256=digest,
            flat_path=rel, flat_sha256=digest, source_width=1920, source_height=1080,
            flat_width=flat.shape[1], flat_height=flat.shape[0], source_dpi=180.0, kind="a4",
            verdict="ok", similarity=0.97, from_video=False))


async def _submit(clerk: ClientSession, call_id: str, scan_ids: list[str]) -> tuple[
        int, dict[str, object]]:
    sub = submission("LS-JZ").model_copy(update={"call_id": call_id, "scans": scan_ids})
    resp = await clerk.post("/api/cases", data=sub.model_dump_json(),
                            headers={"Content-Type": "application/json"})
    return resp.status, await resp.json()


async def test_materials_of_a_call_a_case_and_its_pdf(server: TestServer,
                                                      redis: aioredis.Redis) -> None:
    engine = server.app[CASES].engine
    root = server.app[SETTINGS].storage_root
    await _call(redis, engine, "call-m1")
    await _page(engine, root, "call-m1", "dm1-id", "身份证", 1, 1)
    await _page(engine, root, "call-m1", "dm1-form-1", "临时救助申请书", 1, 2)
    await _page(engine, root, "call-m1", "dm1-form-2", "临时救助申请书", 2, 3)
    await _call(redis, engine, "call-other", clerk="clerk2")
    await _page(engine, root, "call-other", "dm-other", "身份证", 1, 4)
    clerk, other, reviewer = (await _staff(server, "clerk1"), await _staff(server, "clerk2"),
                              await _staff(server, "reviewer_town"))
    try:
        listed = await (await clerk.get("/api/calls/call-m1/materials")).json()
        by_name = {m["name"]: m for m in listed["materials"]}
        assert list(by_name) == ["身份证", "临时救助申请书", "相关证明"]
        assert by_name["身份证"]["ticked"] and not by_name["相关证明"]["ticked"]
        assert [p["page"] for p in by_name["临时救助申请书"]["pages"]] == [1, 2]
        assert (await other.get("/api/calls/call-m1/materials")).status == 404
        # A case may carry only scans of its own call.
        status, refused = await _submit(clerk, "call-m1", ["dm1-id", "dm-other"])
        assert status == 422 and refused["error"]["code"] == "foreign_scan"  # type: ignore[index]
        status, made = await _submit(clerk, "call-m1", ["dm1-id", "dm1-form-1", "dm1-form-2"])
        assert status == 201, made
        case_no = made["case_no"]
        seen = await (await reviewer.get(f"/api/cases/{case_no}/materials")).json()
        assert [(m["name"], len(m["pages"])) for m in seen["materials"]] == [
            ("身份证", 1), ("临时救助申请书", 2)]
        page_id = seen["materials"][1]["pages"][1]["scan_id"]
        resp = await reviewer.get(f"/api/cases/{case_no}/materials/{page_id}")
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        marked = Image.open(io.BytesIO(await resp.read()))
        assert marked.width == 744  # the flattened page, whole
        resp = await reviewer.get(f"/api/cases/{case_no}/materials.pdf")
        pdf = await resp.read()
        assert resp.status == 200 and pdf.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 3  # one page per scanned page
        # Nobody outside the case reads its pages.
        assert (await other.get(f"/api/cases/{case_no}/materials")).status == 404
    finally:
        for s in (clerk, other, reviewer):
            await s.close()


async def test_an_earlier_scan_of_the_applicant_is_offered_and_reattached(
        server: TestServer, redis: aioredis.Redis) -> None:
    engine = server.app[CASES].engine
    root = server.app[SETTINGS].storage_root
    await _call(redis, engine, "call-r1")
    await _page(engine, root, "call-r1", "dr1-id", "身份证", 1, 5)
    await _page(engine, root, "call-r1", "dr1-loose", "身份证", 2, 6)  # never in a case
    clerk = await _staff(server, "clerk1")
    try:
        status, made = await _submit(clerk, "call-r1", ["dr1-id"])
        assert status == 201, made
        await _call(redis, engine, "call-r2")
        resp = await clerk.post("/api/calls/call-r2/materials/reuse-offers",
                                json={"id_number": ID_NUMBER})
        offers = (await resp.json())["offers"]
        assert [(o["scan_id"], o["material_name"], o["case_no"]) for o in offers
                if o["scan_id"] == "dr1-id"] == [("dr1-id", "身份证", made["case_no"])]
        assert all(o["scan_id"] != "dr1-loose" for o in offers)
        refused = await clerk.post("/api/calls/call-r2/materials/reuse",
                                   json={"scan_id": "dr1-loose"})
        assert refused.status == 404
        resp = await clerk.post("/api/calls/call-r2/materials/reuse", json={"scan_id": "dr1-id"})
        assert resp.status == 201
        reused = await resp.json()
        assert reused["reused_from"] == "dr1-id"
        listed = await (await clerk.get("/api/calls/call-r2/materials")).json()
        id_card = listed["materials"][0]
        assert id_card["ticked"] and id_card["pages"][0]["reused_from"] == "dr1-id"
        # The new case carries the call's own scan row, which says where it came from.
        status, again = await _submit(clerk, "call-r2", [reused["scan_id"]])
        assert status == 201, again
    finally:
        await clerk.close()

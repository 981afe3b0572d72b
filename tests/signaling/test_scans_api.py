"""Staff get the watermarked copy of a scan; the original is never served."""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy import insert

from approval.store import CaseSubmission, make_store
from core.media_tables import scans
from core.records import make_engine
from core.settings import Settings
from signaling.app import create_app
from tests.approval.conftest import ID_NUMBER


def _png(w: int = 320, h: int = 200) -> bytes:
    img = np.full((h, w, 3), 255, np.uint8)
    img[40:160, 40:280] = (30, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


async def _add_scan(settings: Settings, rel: str, data: bytes | None) -> str:
    scan_id = "sc-" + secrets.token_hex(4)
    if data is not None:
        path = settings.storage_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    engine = make_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(insert(scans).values(
            scan_id=scan_id, call_id="call-x", taken_by="clerk1", path=rel, thumb_path=rel,
            sha256=hashlib.sha256(data or b"").hexdigest(), width=320, height=200,
            sharpness=100.0))
    await engine.dispose()
    return scan_id


async def _in_a_case_of_the_town(settings: Settings, scan_ids: list[str]) -> None:
    engine = make_engine(settings.database_url)
    sub = CaseSubmission.model_validate({
        "terminal_id": "T-420115-001", "call_id": "call-x", "item_code": "LS-JZ",
        "applicant_name": "刘桂兰", "id_number": ID_NUMBER, "phone": "13800138000",
        "scans": scan_ids, "outcome": "放心回家"})
    await make_store(engine, replace(settings, eseal_key_dir=settings.storage_root / "seal")
                     ).create(sub, "clerk1", datetime.now(UTC))
    await engine.dispose()


async def test_reviewer_sees_watermarked_copy_and_bad_paths_are_refused(
    settings: Settings,
) -> None:
    original = _png()
    good = await _add_scan(settings, "scans/a.png", original)
    escape = await _add_scan(settings, "../../etc/hostname", None)
    await _in_a_case_of_the_town(settings, [good, escape])  # a reviewer sees its groups' scans
    srv = TestServer(create_app(settings))
    await srv.start_server()
    try:
        async with ClientSession(base_url=str(srv.make_url("/")),
                                 cookie_jar=CookieJar(unsafe=True)) as s:
            assert (await s.get(f"/api/scans/{good}")).status == 401
            await s.post("/api/login", json={"username": "reviewer_town",
                                             "password": "demo1234"})
            r = await s.get(f"/api/scans/{good}")
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert r.headers["X-Original-SHA256"] == hashlib.sha256(original).hexdigest()
            copy = np.asarray(Image.open(io.BytesIO(await r.read())).convert("RGB"))
            plain = np.asarray(Image.open(io.BytesIO(original)).convert("RGB"))
            # The watermark changes the white paper, not just the bytes.
            assert copy.shape == plain.shape
            assert np.abs(copy[:30].astype(int) - plain[:30].astype(int)).mean() > 1.0
            assert (await s.get("/api/scans/sc-nope")).status == 404
            assert (await s.get(f"/api/scans/{escape}")).status == 410
    finally:
        await srv.close()

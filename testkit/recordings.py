"""A recorded call made without a call: segments written by the recorder's own writer, their
rows and hash chain, the worker's seal, and (optionally) a case and a scan, for QA tests,
the browser test and the replay benchmark.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.effects import carry_out
from approval.store import CaseStore, CaseSubmission
from core.evidence import GENESIS, chain_hash, file_sha256, seal_content
from core.media_tables import media_calls, recording_segments, scans
from core.qa_tables import recording_seals
from core.signing import EvidenceKeys, canonical
from media.composite import Watermark, compose, to_i420, watermark_i420
from media.recording import SegmentWriter
from verify.idnumber import with_check_digit

FPS = 15
ID_NUMBER = with_check_digit("42011519650312002")


@dataclass(frozen=True)
class RecordedCall:
    call_id: str
    case_no: str | None
    segments: list[Path]
    started_at: datetime
    scan_id: str | None


def _face_picture(i: int, photo: Image.Image | None,
                  rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A moving pattern with a bright square that crosses the face area; with a photo,
    the photo drifting with a camera's noise (what a real call costs to encode)."""
    if photo is None:
        rgb = np.zeros((540, 720, 3), dtype=np.uint8)
        rgb[:, :] = (70 + (i * 3) % 60, 90, 120)
        x = (i * 43) % 640
        rgb[200:320, x : x + 80] = (230, 210, 90)
        return to_i420(rgb)
    canvas = Image.new("RGB", (720, 540), (90, 110, 130))
    dx, dy = int(30 * np.sin(i / 20)), int(12 * np.cos(i / 27))
    canvas.paste(photo, ((720 - photo.width) // 2 + dx, (540 - photo.height) // 2 + dy))
    noisy = np.asarray(canvas, dtype=np.int16) + rng.integers(-4, 5, (540, 720, 1))
    return to_i420(np.clip(noisy, 0, 255).astype(np.uint8))


def write_segments(folder: Path, seconds: float, segment_s: float, started: float,
                   case_no: str, photo_path: Path | None = None
                   ) -> list[tuple[int, Path, float, float, int, str]]:
    """(seq, path, started_at epoch, duration, size, sha256) of each segment written."""
    writer = SegmentWriter(folder, FPS, segment_s, 1.0)
    mark = Watermark(case_no=case_no, terminal_name="童周岭村便民服务点", clerk_name="张敏")
    closed = []
    tone = np.sin(np.arange(48000 // FPS) / 48000 * 2 * np.pi * 440)
    photo = None
    if photo_path is not None:
        photo = Image.open(photo_path).convert("RGB")
        photo.thumbnail((640, 500))
    rng = np.random.default_rng(7)
    for i in range(int(seconds * FPS)):
        at = started + i / FPS
        picture = compose(_face_picture(i, photo, rng), None, None,
                          watermark_i420(mark.lines(at)))
        pcm = (tone * 6000).astype(np.int16)
        done = writer.write(i, at, picture, pcm)
        if done is not None:
            closed.append(done)
    last = writer.close()
    if last is not None:
        closed.append(last)
    return [(c.seq, c.path, c.started_at, c.duration_s, c.size_bytes, c.sha256) for c in closed]


async def make_recorded_call(engine: AsyncEngine, storage_root: Path, keys: EvidenceKeys, *,
                             seconds: float = 6.0, segment_s: float = 2.0,
                             store: CaseStore | None = None, terminal_id: str = "T-420115-001",
                             clerk: str = "clerk1", ended_ago: timedelta = timedelta(0),
                             sealed: bool = True, with_scan: bool = True,
                             photo: Path | None = None,
                             redis: aioredis.Redis | None = None) -> RecordedCall:
    """`redis` given with `store`: the case's review tasks are queued as a submission's are."""
    call_id = "qa-" + secrets.token_hex(6)
    ended = datetime.now(UTC) - ended_ago
    started = ended - timedelta(seconds=seconds)
    folder = storage_root / "recordings" / call_id
    written = await asyncio.to_thread(write_segments, folder, seconds, segment_s,
                                      started.timestamp(), call_id, photo)
    prev = GENESIS
    async with engine.begin() as conn:
        await conn.execute(insert(media_calls).values(
            call_id=call_id, worker_id="media-test", terminal_id=terminal_id,
            clerk_username=clerk, item_code="YL-CB", state="ended", end_reason="hangup",
            started_at=started, ended_at=ended, recording_started_at=started,
            recording_ended_at=ended))
        for seq, path, at, duration, size, sha in written:
            chained = chain_hash(prev, sha)
            await conn.execute(insert(recording_segments).values(
                call_id=call_id, seq=seq, path=str(path.relative_to(storage_root)),
                started_at=datetime.fromtimestamp(at, UTC), duration_s=duration,
                size_bytes=size, sha256=sha, prev_hash=prev, chain_hash=chained))
            prev = chained
        if sealed:
            text = canonical(seal_content(call_id, len(written), prev, ended.isoformat()))
            signature, key_id = keys.sign(text)
            await conn.execute(insert(recording_seals).values(
                call_id=call_id, segments=len(written), final_chain_hash=prev, content=text,
                signature=signature, key_id=key_id, signed_at=ended))
    scan_id = await _scan(engine, storage_root, call_id, clerk, started) if with_scan else None
    case_no = None
    if store is not None:
        change = await store.create(CaseSubmission.model_validate({
            "terminal_id": terminal_id, "call_id": call_id, "item_code": "YL-CB",
            "applicant_name": "刘桂兰", "id_number": ID_NUMBER, "phone": "13800138000",
            "scans": [scan_id] if scan_id else [], "verification": {
                "verification_id": None, "verdict": "通过", "decision": "通过",
                "distance": 0.41},
            "outcome": "放心回家"}), clerk, ended)
        case_no = change.case_no
        if redis is not None:
            await carry_out(redis, change, "")
    return RecordedCall(call_id, case_no, [p for _, p, *_ in written], started, scan_id)


async def _scan(engine: AsyncEngine, root: Path, call_id: str, clerk: str,
                at: datetime) -> str:
    scan_id = secrets.token_hex(12)
    folder = root / "scans" / call_id
    path, thumb = folder / f"{scan_id}.png", folder / f"{scan_id}.thumb.jpg"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        page = Image.new("RGB", (320, 240), (240, 240, 235))
        out = io.BytesIO()
        page.save(out, "PNG")
        path.write_bytes(out.getvalue())
        page.resize((160, 120)).save(thumb, "JPEG")

    await asyncio.to_thread(write)
    async with engine.begin() as conn:
        await conn.execute(insert(scans).values(
            scan_id=scan_id, call_id=call_id, taken_by=clerk,
            path=str(path.relative_to(root)), thumb_path=str(thumb.relative_to(root)),
            sha256=await asyncio.to_thread(file_sha256, path), width=320, height=240,
            sharpness=100.0, created_at=at + timedelta(seconds=1)))
    return scan_id


"""The retention job on a database of its own, with `now` moved on instead of waiting:
the right files and rows go, held ones stay, tombstones are written, a dry run deletes
nothing, and a kill in the middle then a rerun leaves no orphan file or row."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.retention import RetentionJob
from approval.store import CaseStore
from core import records
from core.document_tables import document_scans
from core.evidence import Integrity
from core.media_tables import recording_segments, scans
from core.qa_tables import legal_holds, qa_flags, retention_tombstones
from core.settings import ROOT, Settings
from signaling.qa_recording import integrity
from testkit.recordings import RecordedCall, make_recorded_call


class Killed(BaseException):
    """What a SIGKILL does to the job: nothing after it runs."""


async def recorded(engine: AsyncEngine, settings: Settings, store: CaseStore | None = None,
                   ago_days: float = 0.0) -> RecordedCall:
    return await make_recorded_call(engine, settings.storage_root, settings.evidence_keys,
                                    seconds=3, segment_s=1.0, store=store,
                                    ended_ago=timedelta(days=ago_days))


async def segment_rows(engine: AsyncEngine, call_id: str) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(select(recording_segments.c.id).where(
            recording_segments.c.call_id == call_id))).all())


async def consistent(engine: AsyncEngine, root: Path) -> None:
    """Every row has its file and every file its row: nothing orphaned either way."""
    async with engine.connect() as conn:
        seg = {r.path for r in (await conn.execute(select(recording_segments.c.path))).all()}
        shots = (await conn.execute(select(scans.c.path, scans.c.thumb_path))).all()
        docs = (await conn.execute(select(document_scans.c.original_path,
                                          document_scans.c.flat_path))).all()
        scan_ids = set((await conn.execute(select(scans.c.scan_id))).scalars())
        doc_ids = set((await conn.execute(select(document_scans.c.scan_id))).scalars())
        pending = (await conn.execute(select(retention_tombstones.c.id).where(
            retention_tombstones.c.state == "pending"))).all()
    files = {str(p.relative_to(root)) for p in (root / "recordings").rglob("*.mp4")}
    assert files == seg
    shot_files = {str(p.relative_to(root)) for p in (root / "scans").rglob("*") if p.is_file()}
    assert shot_files == {p for r in [*shots, *docs] for p in r}
    assert doc_ids <= scan_ids  # no document page without its scan row
    assert pending == []


async def document_scan(engine: AsyncEngine, root: Path, call_id: str, at: datetime,
                        reuse_of: str | None = None) -> tuple[str, list[Path]]:
    """A 拍材料 page as the worker stores it (original + flattened + thumb, a `scans` row and
    a `document_scans` row), or a reuse of one: new rows, the same files."""
    scan_id = secrets.token_hex(12)
    if reuse_of is None:
        base = f"scans/{call_id}/{scan_id}"
        original, flat, thumb = f"{base}.original.png", f"{base}.flat.jpg", f"{base}.thumb.jpg"
        (root / "scans" / call_id).mkdir(parents=True, exist_ok=True)
        for name in (original, flat, thumb):
            (root / name).write_bytes(b"page " + name.encode())
    else:
        async with engine.connect() as conn:
            old = (await conn.execute(select(document_scans.c.original_path,
                                             document_scans.c.flat_path, scans.c.thumb_path)
                                      .join(scans, scans.c.scan_id == document_scans.c.scan_id)
                                      .where(document_scans.c.scan_id == reuse_of))).one()
        original, flat, thumb = old.original_path, old.flat_path, old.thumb_path
    async with engine.begin() as conn:
        await conn.execute(insert(scans).values(
            scan_id=scan_id, call_id=call_id, taken_by="clerk1", path=flat, thumb_path=thumb,
            sha256="f" * 64, width=1654, height=2339, sharpness=100.0, created_at=at))
        await conn.execute(insert(document_scans).values(
            scan_id=scan_id, call_id=call_id, material_code="id_card", material_name="身份证",
            page=1, taken_by="clerk1", uploaded_by="clerk1", original_path=original,
            original_sha256="o" * 64, flat_path=flat, flat_sha256="f" * 64,
            source_width=1920, source_height=1080, flat_width=1654, flat_height=2339,
            kind="id_card", verdict="ok", reused_from=reuse_of, created_at=at))
    return scan_id, [root / original, root / flat, root / thumb]


async def doc_rows(engine: AsyncEngine, scan_id: str) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(select(document_scans.c.scan_id).where(
            document_scans.c.scan_id == scan_id))).all()) + len((await conn.execute(
                select(scans.c.scan_id).where(scans.c.scan_id == scan_id))).all())


async def test_moving_now_on_deletes_what_is_due_and_keeps_what_is_held(
        engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    root = qa_settings.storage_root
    plain = await recorded(engine, qa_settings, store)
    on_hold = await recorded(engine, qa_settings)
    flagged = await recorded(engine, qa_settings, store)
    young = await recorded(engine, qa_settings, ago_days=-20)  # ends 20 days later
    verification = root / "verification" / plain.call_id
    verification.mkdir(parents=True)
    (verification / "portrait.jpg").write_bytes(b"card portrait")
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(legal_holds).values(
            call_id=on_hold.call_id, reason="投诉调查", placed_by="admin", placed_at=now))
        await conn.execute(insert(qa_flags).values(
            case_no=flagged.case_no, call_id=flagged.call_id, category="服务态度", note="语气生硬",
            state="assigned", source="qa", created_by="qa1", created_at=now, updated_at=now))
    job = RetentionJob(engine, qa_settings)

    month = now + timedelta(days=31)
    dry = await job.run(month, dry_run=True)
    assert {d["subject"] for d in dry.deleted} == {plain.call_id}
    assert all(p.exists() for p in plain.segments)  # a dry run deletes nothing

    report = await job.run(month)
    assert [(d["kind"], d["subject"]) for d in report.deleted] == [("recording", plain.call_id)]
    assert {h["subject"]: h["rule"] for h in report.held} == {
        on_hold.call_id: "冻结：投诉调查", flagged.call_id: "问题件未关闭"}
    assert not any(p.exists() for p in plain.segments)
    assert not (root / "recordings" / plain.call_id).exists()
    assert await segment_rows(engine, plain.call_id) == 0
    assert all(p.exists() for p in on_hold.segments + flagged.segments + young.segments)
    assert (root / "scans" / plain.call_id).is_dir()  # scans are kept 90 days
    async with engine.connect() as conn:
        tomb = (await conn.execute(select(retention_tombstones).where(
            retention_tombstones.c.subject == plain.call_id))).mappings().one()
        entry = (await conn.execute(select(records.audit_log).where(
            records.audit_log.c.action == "retention.delete"))).mappings().one()
    assert tomb["state"] == "done" and tomb["rule"] == "recording-30d"
    assert tomb["case_no"] == plain.case_no and tomb["detail"]["segments"] == 3
    assert len(tomb["content_hash"]) == 64 and entry["subject"] == plain.case_no
    assert entry["after"]["content_hash"] == tomb["content_hash"]
    line = await integrity(engine, qa_settings, plain.call_id, ended=True)
    assert line.state == Integrity.DELETED and "按保存期限删除" in line.message

    quarter = now + timedelta(days=91)
    report = await job.run(quarter)
    gone = {(d["kind"], d["subject"]) for d in report.deleted}
    assert ("scan", plain.scan_id) in gone and ("verification", plain.call_id) in gone
    assert ("recording", young.call_id) in gone and ("scan", young.scan_id) not in gone
    assert ("recording", on_hold.call_id) not in gone and ("scan", on_hold.scan_id) not in gone
    assert not verification.exists()
    assert all(p.exists() for p in on_hold.segments + flagged.segments)
    await consistent(engine, root)
    again = await job.run(quarter)  # nothing twice
    assert again.deleted == [] and again.resumed == 0


async def test_a_kill_during_deletion_then_a_rerun_finishes_the_job(
        engine: AsyncEngine, qa_settings: Settings) -> None:
    root = qa_settings.storage_root
    calls = [await recorded(engine, qa_settings, ago_days=40) for _ in range(3)]
    removed: list[Path] = []

    def dying_remove(path: Path) -> None:
        if len(removed) == 2:
            raise Killed
        path.unlink()
        removed.append(path)

    with pytest.raises(Killed):
        await RetentionJob(engine, qa_settings, remove=dying_remove).run(datetime.now(UTC))
    first = next(c for c in calls if removed[0] in c.segments)
    assert await segment_rows(engine, first.call_id) == 3  # rows stay until the files go
    report = await RetentionJob(engine, qa_settings).run(datetime.now(UTC))
    assert report.resumed == 1
    assert {d["subject"] for d in report.deleted} == {c.call_id for c in calls} - {first.call_id}
    for c in calls:
        assert await segment_rows(engine, c.call_id) == 0
        assert not any(p.exists() for p in c.segments)
    await consistent(engine, root)
    async with engine.connect() as conn:
        states = (await conn.execute(select(retention_tombstones.c.state))).scalars().all()
    assert sorted(states) == ["done"] * 3


async def test_a_real_kill_of_the_command_then_a_rerun_leaves_no_orphan(
        engine: AsyncEngine, qa_settings: Settings) -> None:
    root = qa_settings.storage_root
    for _ in range(8):
        await recorded(engine, qa_settings, ago_days=40)
    env = {**os.environ, "DATABASE_URL": qa_settings.database_url, "STORAGE_ROOT": str(root),
           "EVIDENCE_KEY_DIR": str(qa_settings.evidence_key_dir)}
    cmd = [sys.executable, "-m", "approval.retention"]
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL)
    for _ in range(400):  # kill it as soon as a deletion is under way
        async with engine.connect() as conn:
            if (await conn.execute(select(retention_tombstones.c.id))).first() is not None:
                break
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    rerun = await asyncio.create_subprocess_exec(*cmd, env=env, cwd=ROOT,
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await rerun.communicate()
    assert rerun.returncode == 0, out
    await consistent(engine, root)
    assert list((root / "recordings").rglob("*.mp4")) == []
    dry = await asyncio.create_subprocess_exec(*cmd, "--dry-run", env=env, cwd=ROOT,
                                               stdout=asyncio.subprocess.PIPE)
    listing, _ = await dry.communicate()
    assert '"deleted": 0' in listing.decode()


async def test_document_pages_go_after_90_days_but_a_reuse_keeps_its_files(
        engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    root = qa_settings.storage_root
    now = datetime.now(UTC)
    first = await recorded(engine, qa_settings, store)
    later = await recorded(engine, qa_settings, store)
    on_hold = await recorded(engine, qa_settings, store)
    flagged = await recorded(engine, qa_settings, store)
    page, files = await document_scan(engine, root, first.call_id, now)
    reused, same = await document_scan(engine, root, later.call_id, now + timedelta(days=60),
                                       reuse_of=page)
    held_page, held_files = await document_scan(engine, root, on_hold.call_id, now)
    flagged_page, flagged_files = await document_scan(engine, root, flagged.call_id, now)
    assert same == files
    async with engine.begin() as conn:
        await conn.execute(insert(legal_holds).values(
            case_no=on_hold.case_no, reason="诉讼中", placed_by="admin", placed_at=now))
        await conn.execute(insert(qa_flags).values(
            case_no=flagged.case_no, call_id=flagged.call_id, category="材料不全", note="缺页",
            state="marked", source="qa", created_by="qa1", created_at=now, updated_at=now))
    job = RetentionJob(engine, qa_settings)

    report = await job.run(now + timedelta(days=91))
    gone = {d["subject"] for d in report.deleted if d["kind"] == "scan"}
    assert page in gone and reused not in gone
    assert {held_page, flagged_page} <= {h["subject"] for h in report.held}
    assert await doc_rows(engine, page) == 0
    assert all(p.exists() for p in files)  # the reuse of 60 days later still shows them
    assert await doc_rows(engine, reused) == 2
    assert all(p.exists() for p in held_files + flagged_files)
    async with engine.connect() as conn:
        tomb = (await conn.execute(select(retention_tombstones).where(
            retention_tombstones.c.subject == page))).mappings().one()
    assert tomb["state"] == "done" and tomb["rule"] == "scan-90d"
    assert tomb["case_no"] == first.case_no
    await consistent(engine, root)

    report = await job.run(now + timedelta(days=151))
    assert reused in {d["subject"] for d in report.deleted}
    assert not any(p.exists() for p in files)  # the original and the flattened page
    assert await doc_rows(engine, reused) == 0
    assert all(p.exists() for p in held_files + flagged_files)
    await consistent(engine, root)


async def test_a_kill_while_deleting_document_pages_then_a_rerun_finishes(
        engine: AsyncEngine, qa_settings: Settings) -> None:
    root = qa_settings.storage_root
    call_id = "call-" + secrets.token_hex(6)  # pages only: the kill falls among their files
    old = datetime.now(UTC) - timedelta(days=100)
    pages = [await document_scan(engine, root, call_id, old) for _ in range(2)]
    removed: list[Path] = []

    def dying_remove(path: Path) -> None:
        if len(removed) == 2:  # the original and the flattened page gone, not the thumb
            raise Killed
        path.unlink()
        removed.append(path)

    with pytest.raises(Killed):
        await RetentionJob(engine, qa_settings, remove=dying_remove).run(datetime.now(UTC))
    report = await RetentionJob(engine, qa_settings).run(datetime.now(UTC))
    assert report.resumed == 1
    for scan_id, files in pages:
        assert await doc_rows(engine, scan_id) == 0
        assert not any(p.exists() for p in files)
    await consistent(engine, root)

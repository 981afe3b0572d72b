"""The retention job on a database of its own, with `now` moved on instead of waiting:
the right files and rows go, held ones stay, tombstones are written, a dry run deletes
nothing, and a kill in the middle then a rerun leaves no orphan file or row."""

from __future__ import annotations

import asyncio
import os
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
        pending = (await conn.execute(select(retention_tombstones.c.id).where(
            retention_tombstones.c.state == "pending"))).all()
    files = {str(p.relative_to(root)) for p in (root / "recordings").rglob("*.mp4")}
    assert files == seg
    shot_files = {str(p.relative_to(root)) for p in (root / "scans").rglob("*") if p.is_file()}
    assert shot_files == {p for r in shots for p in (r.path, r.thumb_path)}
    assert pending == []


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

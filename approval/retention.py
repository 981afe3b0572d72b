"""The retention job: deletes what the rules (`approval.retention_rules`) say has gone past
its period, leaves a tombstone for each, and survives being killed half way.

Each deletion is journalled first: a `pending` tombstone naming the files. Then the files
go, then — in one transaction — the rows, the tombstone turns `done` and the audit gets
its entry. A run begins by finishing every `pending` tombstone, so a kill at any point
leaves nothing a rerun does not complete: no row without its file, no file without its
row. `python -m approval.retention [--dry-run] [--now ISO]`; the approval worker runs it
daily (`RETENTION_INTERVAL_S`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.retention_rules import (
    Fate,
    Holds,
    Policy,
    Stored,
    Verdict,
    decide,
    holds_from,
    unshared,
)
from approval.tables import cases
from core import audit, records
from core.document_tables import document_scans
from core.media_tables import media_calls, recording_segments, scans
from core.qa_flags import OPEN_STATES
from core.qa_tables import legal_holds, qa_flags, recording_seals, retention_tombstones
from core.settings import Settings

log = logging.getLogger("approval.retention")
VERIFICATION_FOLDER = "verification"  # storage_root/verification/<call id>/
Remove = Callable[[Path], None]


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def policy_of(settings: Settings) -> Policy:
    return Policy(settings.retention_recording_days, settings.retention_scan_days,
                  settings.retention_verification_days)


@dataclass
class RetentionReport:
    dry_run: bool
    now: str
    deleted: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    resumed: int = 0
    audit_entries: int = 0
    audit_oldest: str | None = None


def _describe(v: Verdict) -> dict[str, Any]:
    return {"kind": v.thing.kind, "subject": v.thing.subject, "case_nos": list(v.thing.case_nos),
            "rule": v.rule, "due_at": v.due_at.isoformat()}


class RetentionJob:
    def __init__(self, engine: AsyncEngine, settings: Settings, remove: Remove = _remove,
                 batch: int = 500) -> None:
        self.engine = engine
        self.settings = settings
        self.root = settings.storage_root
        self.remove = remove
        self.batch = batch

    # --- what there is --------------------------------------------------------------

    async def holds(self) -> Holds:
        async with self.engine.connect() as conn:
            legal = (await conn.execute(select(
                legal_holds.c.case_no, legal_holds.c.call_id, legal_holds.c.reason).where(
                legal_holds.c.released_at.is_(None)))).all()
            flags = (await conn.execute(select(qa_flags.c.case_no, qa_flags.c.call_id).where(
                qa_flags.c.state.in_(OPEN_STATES)))).all()
        return holds_from([(r[0], r[1], r[2]) for r in legal], [(r[0], r[1]) for r in flags])

    def _tombstoned(self, kind: str, subject: Any) -> Any:
        t = retention_tombstones.c
        return ~select(t.id).where(and_(t.kind == kind, t.subject == subject)).exists()

    async def candidates(self, now: datetime) -> list[Stored]:
        m, c, s = media_calls.c, cases.c, scans.c
        policy = policy_of(self.settings)
        since = func.coalesce(m.recording_ended_at, m.ended_at, m.started_at)
        rec_cut = now - timedelta(days=policy.recording_days)
        case_of_call = func.array(select(c.case_no).where(c.call_id == m.call_id)
                                  .scalar_subquery())
        case_of_scan = func.array(select(c.case_no).where(or_(
            c.call_id == s.call_id, c.scans.contains(func.jsonb_build_array(s.scan_id))))
            .scalar_subquery())
        async with self.engine.connect() as conn:
            calls = (await conn.execute(select(m.call_id, since.label("since"),
                                               case_of_call.label("cases")).where(
                since < rec_cut,
                or_(m.state != "active", m.started_at < rec_cut - timedelta(days=1)),
                select(recording_segments.c.id).where(
                    recording_segments.c.call_id == m.call_id).exists(),
                self._tombstoned("recording", m.call_id)).limit(self.batch))).all()
            shots = (await conn.execute(select(s.scan_id, s.call_id, s.created_at,
                                               case_of_scan.label("cases")).where(
                s.created_at < now - timedelta(days=policy.scan_days),
                self._tombstoned("scan", s.scan_id)).limit(self.batch))).all()
        out = [Stored("recording", r.call_id, r.call_id, tuple(r.cases), r.since) for r in calls]
        out += [Stored("scan", r.scan_id, r.call_id, tuple(r.cases), r.created_at)
                for r in shots]
        return out + await self._verification_folders(now)

    async def _verification_folders(self, now: datetime) -> list[Stored]:
        folder = self.root / VERIFICATION_FOLDER
        names = await asyncio.to_thread(
            lambda: sorted(p.name for p in folder.iterdir() if p.is_dir())
            if folder.is_dir() else [])
        if not names:
            return []
        m, c = media_calls.c, cases.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(
                m.call_id, func.coalesce(m.ended_at, m.started_at).label("since"),
                func.array(select(c.case_no).where(c.call_id == m.call_id).scalar_subquery())
                .label("cases")).where(m.call_id.in_(names[: self.batch]),
                                       self._tombstoned("verification", m.call_id)))).all()
        return [Stored("verification", r.call_id, r.call_id, tuple(r.cases), r.since)
                for r in rows]

    # --- deleting -------------------------------------------------------------------

    def _inside(self, relative: str) -> Path | None:
        path = (self.root / relative).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None

    async def _journal(self, v: Verdict, now: datetime) -> dict[str, Any] | None:
        """The pending tombstone: what will go, its hash, its files (None: already done)."""
        thing = v.thing
        async with self.engine.begin() as conn:
            if thing.kind == "recording":
                t = recording_segments.c
                rows = (await conn.execute(select(t.path, t.size_bytes, t.chain_hash).where(
                    t.call_id == thing.subject).order_by(t.seq))).all()
                sealed = await conn.scalar(select(recording_seals.c.final_chain_hash).where(
                    recording_seals.c.call_id == thing.subject))
                files = [r.path for r in rows]
                content = sealed or (rows[-1].chain_hash if rows else "")
                detail = {"files": files, "segments": len(rows),
                          "bytes": int(sum(r.size_bytes for r in rows))}
            elif thing.kind == "scan":
                row = (await conn.execute(select(scans.c.path, scans.c.thumb_path,
                                                 scans.c.sha256).where(
                    scans.c.scan_id == thing.subject))).first()
                doc = (await conn.execute(select(document_scans.c.original_path,
                                                 document_scans.c.flat_path).where(
                    document_scans.c.scan_id == thing.subject))).first()
                # a document page keeps its original beside the flattened page (= path)
                files = unshared(([row.path, row.thumb_path] if row else [])
                                 + ([doc.original_path, doc.flat_path] if doc else []), [])
                content, detail = (row.sha256 if row else ""), {"files": files}
            else:
                files, content = await asyncio.to_thread(self._folder_files, thing.subject)
                detail = {"files": files}
            stmt = pg_insert(retention_tombstones).values(
                kind=thing.kind, subject=thing.subject,
                case_no=thing.case_nos[0] if thing.case_nos else None, rule=v.rule,
                due_at=v.due_at, content_hash=content, detail=detail, state="pending",
                started_at=now).on_conflict_do_nothing(constraint="tombstone_once")
            created = await conn.execute(stmt.returning(retention_tombstones.c.id))
            if created.first() is None:
                return None
        return detail

    def _folder_files(self, call_id: str) -> tuple[list[str], str]:
        folder = self.root / VERIFICATION_FOLDER / call_id
        files = sorted(str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for name in files:
            digest.update(name.encode() + b"\0" + (self.root / name).read_bytes())
        return files, digest.hexdigest()

    def _remove_files(self, kind: str, subject: str, files: list[str]) -> None:
        for name in files:
            path = self._inside(name)
            if path is None:
                log.error("retention refused a path outside the storage root",
                          extra={"subject": subject, "path": name})
                continue
            self.remove(path)
        folder = {"recording": self.root / "recordings" / subject,
                  "verification": self.root / VERIFICATION_FOLDER / subject}.get(kind)
        if folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    async def _finish(self, tomb: Any, now: datetime) -> None:
        """Rows gone, tombstone done, audit entry: one transaction."""
        kind, subject = tomb["kind"], tomb["subject"]
        async with self.engine.begin() as conn:
            if kind == "recording":
                await conn.execute(delete(recording_segments).where(
                    recording_segments.c.call_id == subject))
            elif kind == "scan":
                await conn.execute(delete(scans).where(scans.c.scan_id == subject))
                await conn.execute(delete(document_scans).where(
                    document_scans.c.scan_id == subject))
            await conn.execute(update(retention_tombstones).where(
                retention_tombstones.c.id == tomb["id"]).values(state="done", deleted_at=now))
            await audit.append(conn, "system", "retention.delete", tomb["case_no"] or subject,
                               None, {"kind": kind, "subject": subject, "rule": tomb["rule"],
                                      "content_hash": tomb["content_hash"],
                                      "tombstone_id": tomb["id"],
                                      "files": len(tomb["detail"].get("files", []))}, now)

    async def _still_used(self, subject: str, files: list[str]) -> list[str]:
        """Which of these files another scan row still points at (asked at deletion time,
        also when a killed run is finished, since a reuse may have come in between)."""
        s, d = scans.c, document_scans.c
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(s.path, s.thumb_path).where(
                s.scan_id != subject, or_(s.path.in_(files), s.thumb_path.in_(files))))).all()
            docs = (await conn.execute(select(d.original_path, d.flat_path).where(
                d.scan_id != subject,
                or_(d.original_path.in_(files), d.flat_path.in_(files))))).all()
        return [name for r in [*rows, *docs] for name in r]

    async def _complete(self, tomb: Any, now: datetime) -> None:
        files = list(tomb["detail"].get("files", []))
        if tomb["kind"] == "scan" and files:
            files = unshared(files, await self._still_used(tomb["subject"], files))
        await asyncio.to_thread(self._remove_files, tomb["kind"], tomb["subject"], files)
        await self._finish(tomb, now)

    async def _pending(self, kind: str | None = None,
                       subject: str | None = None) -> list[Any]:
        t = retention_tombstones.c
        where = [t.state == "pending"]
        if kind is not None:
            where += [t.kind == kind, t.subject == subject]
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(retention_tombstones).where(and_(*where))
                                            .order_by(t.id))).mappings().all())

    # --- a run ----------------------------------------------------------------------

    async def run(self, now: datetime, dry_run: bool = False) -> RetentionReport:
        report = RetentionReport(dry_run=dry_run, now=now.isoformat())
        if not dry_run:
            for tomb in await self._pending():  # a run that was killed: finish it first
                await self._complete(tomb, now)
                report.resumed += 1
        verdicts = decide(await self.candidates(now), await self.holds(),
                          policy_of(self.settings), now)
        for v in verdicts:
            if v.fate == Fate.HELD:
                report.held.append(_describe(v))
            elif v.fate == Fate.DELETE:
                if not dry_run:
                    if await self._journal(v, now) is None:
                        continue
                    for tomb in await self._pending(v.thing.kind, v.thing.subject):
                        await self._complete(tomb, now)
                report.deleted.append(_describe(v))
        async with self.engine.connect() as conn:
            a = records.audit_log.c
            row = (await conn.execute(select(func.count(), func.min(a.at)))).one()
        report.audit_entries, report.audit_oldest = int(row[0]), (
            row[1].isoformat() if row[1] else None)
        return report


def _print(report: RetentionReport, settings: Settings) -> None:
    verb = "将删除" if report.dry_run else "已删除"
    for d in report.deleted:
        print(f"{verb} {d['kind']} {d['subject']}（办件 {','.join(d['case_nos']) or '无'}，"
              f"规则 {d['rule']}，到期 {d['due_at']}）")
    for h in report.held:
        print(f"保留 {h['kind']} {h['subject']}：{h['rule']}（本应于 {h['due_at']} 删除）")
    if report.resumed:
        print(f"完成上次中断的删除 {report.resumed} 项")
    print(f"审计日志：{report.audit_entries} 条，最早 {report.audit_oldest}，不删除"
          f"（至少保存 {settings.retention_audit_days:g} 天）")
    print(json.dumps({"retention": "dry-run" if report.dry_run else "run", "now": report.now,
                      "deleted": len(report.deleted), "held": len(report.held),
                      "resumed": report.resumed}))


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m approval.retention")
    parser.add_argument("--dry-run", action="store_true", help="list what would go; delete "
                        "nothing")
    parser.add_argument("--now", default=None, help="ISO time to judge by (default: now)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    engine = records.make_engine(settings.database_url)
    try:
        report = await RetentionJob(engine, settings).run(now, args.dry_run)
    finally:
        await engine.dispose()
    _print(report, settings)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))

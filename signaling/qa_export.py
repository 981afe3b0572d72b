"""Evidence export: one signed archive per case (`core.evidence_export`), for admin, or for
QA handling a complaint (投诉处理).

Unlike a replay, the export carries the original segments: a court or an auditor checks
them against the hash chain and the worker's seal, which a re-rendered copy could not
pass. So it is the narrowest door: its own purpose rule, an access-log row and an audit
entry before the archive is built, the archive's hash in the audit after.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseNotFound
from core import audit, records
from core.evidence_export import ExportBundle, ExportFile, build_archive
from core.media_tables import media_calls, recording_segments, scans
from core.qa_tables import audit_checkpoints, recording_seals
from core.replies import http_error
from core.settings import Settings
from signaling.appkeys import ENGINE, SETTINGS
from signaling.auth import Session, require_session
from signaling.case_http import CASE_NO, body, jsonable, now, store_of
from signaling.qa_access import PurposeGiven, open_access

log = logging.getLogger(__name__)


class ExportRequest(PurposeGiven):
    case_no: str = Field(pattern=CASE_NO.pattern)


def _inside(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


async def gather(engine: AsyncEngine, settings: Settings, detail: dict[str, Any],
                 viewer: Session, given: PurposeGiven, at: datetime) -> ExportBundle:
    """The record and the files of one case, as they are now."""
    case = detail["case"]
    case_no, call_id = case["case_no"], case["call_id"]
    root = settings.storage_root
    files: list[ExportFile] = []
    record: dict[str, Any] = {
        "exported_at": at.isoformat(), "exported_by": viewer.who,
        "exported_by_name": viewer.display_name, "purpose": given.purpose,
        "purpose_text": given.purpose_text,
        "case": jsonable({k: v for k, v in case.items() if k != "state"}),
        "steps": jsonable(detail["steps"]), "decisions": jsonable(detail["decisions"]),
        "materials": jsonable(detail["materials"]), "verification": case["verification"],
    }
    async with engine.connect() as conn:
        shots = (await conn.execute(select(scans).where(or_(
            scans.c.scan_id.in_(list(case["scans"])), scans.c.call_id == call_id)))
        ).mappings().all() if call_id or case["scans"] else []
        t = recording_segments.c
        segments = (await conn.execute(select(recording_segments).where(
            t.call_id == call_id).order_by(t.seq))).mappings().all() if call_id else []
        seal = (await conn.execute(select(recording_seals).where(
            recording_seals.c.call_id == call_id))).mappings().first() if call_id else None
        call = (await conn.execute(select(media_calls).where(
            media_calls.c.call_id == call_id))).mappings().first() if call_id else None
        a = records.audit_log
        subjects = [s for s in (case_no, call_id) if s]
        entries = (await conn.execute(select(a).where(a.c.subject.in_(subjects))
                                      .order_by(a.c.id))).mappings().all()
        checkpoint = (await conn.execute(select(audit_checkpoints).order_by(
            audit_checkpoints.c.upto_id.desc()).limit(1))).mappings().first()
    record["scans"] = []
    for s in shots:
        name = f"scans/{s['scan_id']}.png"
        path = _inside(root, s["path"])
        if path is not None:
            files.append(ExportFile(name, path))
        record["scans"].append({"scan_id": s["scan_id"], "sha256": s["sha256"],
                                "file": name if path else None,
                                "created_at": s["created_at"].isoformat()})
    if call is not None:
        segs = []
        for s in segments:
            name = f"recording/{int(s['seq']):04d}.mp4"
            path = _inside(root, s["path"])
            if path is not None:
                files.append(ExportFile(name, path))
            segs.append({"seq": int(s["seq"]), "sha256": s["sha256"],
                         "prev_hash": s["prev_hash"], "chain_hash": s["chain_hash"],
                         "started_at": s["started_at"].isoformat(),
                         "duration_s": float(s["duration_s"]), "file": name})
        record["recording"] = {
            "call_id": call_id, "call": jsonable(dict(call)), "segments": segs,
            "seal": None if seal is None else {k: seal[k] for k in (
                "content", "signature", "key_id")}}
    record["audit"] = [{**jsonable(dict(e)), "at": e["at"].isoformat()} for e in entries]
    record["checkpoints"] = [] if checkpoint is None else [jsonable(dict(checkpoint))]
    return ExportBundle(case_no, record, files)


async def export_case(request: web.Request) -> web.StreamResponse:
    session = await require_session(request, "qa", "admin")
    req = await body(request, ExportRequest)
    if session.role == "qa" and req.purpose != "投诉处理":
        raise http_error(web.HTTPForbidden, "export_needs_complaint",
                         "质检人员仅在“投诉处理”时可以导出证据包")
    settings, engine = request.app[SETTINGS], request.app[ENGINE]
    try:
        detail = await store_of(request).get(req.case_no)
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    at = now()
    given = PurposeGiven(purpose=req.purpose, purpose_text=req.purpose_text)
    access_id = await open_access(engine, session, "export", req.case_no,
                                  detail["case"]["call_id"], given, at)
    bundle = await gather(engine, settings, detail, session, given, at)
    folder = settings.storage_root / "exports"
    out = folder / f"{req.case_no}-{secrets.token_hex(6)}.zip"

    def build() -> tuple[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        return build_archive(bundle, out, settings.evidence_keys), out.stat().st_size

    try:
        sha, size = await asyncio.to_thread(build)
        async with engine.begin() as conn:
            await audit.append(conn, session.who, "qa.export.archive", req.case_no, None,
                               {"access_id": access_id, "sha256": sha, "bytes": size,
                                "files": len(bundle.files)}, now())
        return await _send_file(request, out, size, f"evidence-{req.case_no}.zip", sha)
    finally:
        await asyncio.to_thread(out.unlink, True)


async def _send_file(request: web.Request, path: Path, size: int, name: str,
                     sha: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "application/zip", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{name}"', "X-Archive-SHA256": sha})
    response.content_length = size
    await response.prepare(request)
    with path.open("rb") as f:
        while block := await asyncio.to_thread(f.read, 1 << 20):
            await response.write(block)
    await response.write_eof()
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/qa/exports", export_case)

"""Scans as staff see them: always the watermarked copy, never the original file.

Chinese practice asks that every stored or shown copy of an ID document says what it may
be used for ("仅供办理××使用，他用无效"); the original stays under the storage root with its
SHA-256 on record.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from approval import workflow as wf
from approval.tables import cases
from core.media_tables import scans
from core.replies import http_error
from signaling.appkeys import ENGINE, SETTINGS
from signaling.audit_trail import note
from signaling.auth import Session, require_session
from signaling.case_access import CaseFacts, case_view, may_see_scans
from signaling.cases_api import purpose_of
from verify.watermark import make_copy

FALLBACK_ITEM = "远程虚拟窗口政务服务"


def _inside(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) else None


def _may_see(session: Session, scan: Any, carrying: list[Any]) -> bool:
    """Through a case that carries it, or as the clerk who took it (before the case)."""
    if session.role == "clerk" and scan["taken_by"] == session.who:
        return True
    for case in carrying:
        plan = wf.CaseState.model_validate(case["state"]).plan
        facts = CaseFacts.of(dict(case), {g for st in plan for g in st.groups})
        if may_see_scans(session, case_view(session, facts)):
            return True
    return False


async def scan_copy(request: web.Request) -> web.Response:
    session = await require_session(request, "clerk", "reviewer", "qa", "admin")
    purpose = purpose_of(request, session)
    scan_id = request.match_info["scan_id"]
    async with request.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(scans).where(scans.c.scan_id == scan_id))
               ).mappings().first()
        carrying = (await conn.execute(select(
            cases.c.case_no, cases.c.item_name, cases.c.terminal_id, cases.c.clerk,
            cases.c.call_clerks, cases.c.state).where(cases.c.scans.contains([scan_id]))
            .limit(5))).mappings().all()
    item = carrying[0]["item_name"] if carrying else None
    if row is None or not _may_see(session, row, list(carrying)):
        raise http_error(web.HTTPNotFound, "no_scan", "没有这份材料")
    await note(request.app[ENGINE], session.who, "scan.read", scan_id,
               {"role": session.role, "purpose": purpose})
    path = _inside(request.app[SETTINGS].storage_root, row["path"])
    if path is None or not path.is_file():
        raise http_error(web.HTTPGone, "scan_missing", "材料文件已不在存储中")
    original = await asyncio.to_thread(path.read_bytes)
    day = row["created_at"].astimezone(UTC).date() if row["created_at"] else \
        datetime.now(UTC).date()
    copy = await asyncio.to_thread(make_copy, original, item or FALLBACK_ITEM, day)
    return web.Response(body=copy.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store",
                                 "X-Original-SHA256": copy.original_sha256})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/scans/{scan_id}", scan_copy)

"""The QA access log: every replay, download and export, with viewer, time, purpose and how
long it was watched. Each access is also an entry of the audit chain, written in the same
transaction, so the log cannot lose a row unnoticed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import audit
from core.qa_tables import qa_access_log
from signaling.auth import Session

Purpose = Literal["抽查", "投诉处理", "问题件复核", "其他"]
AccessKind = Literal["replay", "download", "export"]
WATCH_SLACK_S = 5.0  # a page's report may run this far ahead of the server's clock


class PurposeGiven(BaseModel):
    """Why someone opens a recording: asked before every replay, download or export."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    purpose_text: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _other_needs_words(self) -> PurposeGiven:
        if self.purpose == "其他" and not self.purpose_text.strip():
            raise ValueError("选择“其他”时请写明用途")
        return self


class Progress(BaseModel):
    """The replay page's report: seconds watched so far; `ended` when the viewer left."""

    model_config = ConfigDict(extra="forbid")

    watched_s: float = Field(ge=0, le=24 * 3600)
    ended: bool = False


class AccessFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    viewer: str | None = Field(default=None, max_length=64)
    case_no: str | None = Field(default=None, max_length=32)
    since: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = Field(default=None, alias="to")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


async def open_access(engine: AsyncEngine, viewer: Session, kind: AccessKind,
                      case_no: str | None, call_id: str | None, given: PurposeGiven,
                      now: datetime, detail: dict[str, Any] | None = None) -> int:
    """Log one access and its audit entry; returns the access id."""
    t = qa_access_log
    async with engine.begin() as conn:
        access_id = int((await conn.execute(insert(t).values(
            viewer=viewer.who, viewer_name=viewer.display_name, viewer_role=viewer.role,
            kind=kind, case_no=case_no, call_id=call_id, purpose=given.purpose,
            purpose_text=given.purpose_text, opened_at=now, audit_hash="",
        ).returning(t.c.id))).scalar_one())
        entry = await audit.append(conn, viewer.who, f"qa.{kind}", case_no or call_id or "",
                                   None, {"access_id": access_id, "call_id": call_id,
                                          "case_no": case_no, "purpose": given.purpose,
                                          "purpose_text": given.purpose_text,
                                          "viewer_name": viewer.display_name,
                                          **(detail or {})}, now)
        await conn.execute(update(t).where(t.c.id == access_id).values(audit_hash=entry))
    return access_id


async def report_progress(engine: AsyncEngine, access_id: int, viewer: str, report: Progress,
                          now: datetime) -> bool:
    """Record how long the viewer has watched; False if the access is not theirs. The
    figure never exceeds the time since the replay opened; the end goes into the audit."""
    t = qa_access_log
    async with engine.begin() as conn:
        row = (await conn.execute(select(t).where(and_(t.c.id == access_id,
                                                       t.c.viewer == viewer))
                                  .with_for_update())).mappings().first()
        if row is None:
            return False
        if row["closed_at"] is not None:
            return True
        elapsed = (now - row["opened_at"]).total_seconds() + WATCH_SLACK_S
        watched = round(max(float(row["watched_s"]), min(report.watched_s, elapsed)), 1)
        values: dict[str, Any] = {"watched_s": watched, "last_seen_at": now}
        if report.ended:
            values["closed_at"] = now
            await audit.append(conn, viewer, f"qa.{row['kind']}.end",
                               row["case_no"] or row["call_id"] or "", None,
                               {"access_id": access_id, "watched_s": watched}, now)
        await conn.execute(update(t).where(t.c.id == access_id).values(**values))
    return True


def _jsonable(row: Any) -> dict[str, Any]:
    out = dict(row)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
    return out


async def list_access(engine: AsyncEngine, f: AccessFilter) -> dict[str, Any]:
    t = qa_access_log
    where = []
    if f.viewer:
        where.append(t.c.viewer == f.viewer)
    if f.case_no:
        where.append(t.c.case_no == f.case_no)
    if f.since:
        where.append(t.c.opened_at >= f.since)
    if f.until:
        where.append(t.c.opened_at < f.until)
    stmt = select(t).where(and_(*where)) if where else select(t)
    async with engine.connect() as conn:
        total = int(await conn.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = (await conn.execute(stmt.order_by(t.c.id.desc()).limit(f.per_page)
                                   .offset((f.page - 1) * f.per_page))).mappings().all()
    return {"total": total, "page": f.page, "per_page": f.per_page,
            "rows": [_jsonable(r) for r in rows]}


async def for_subject(engine: AsyncEngine, case_no: str | None,
                      call_id: str | None) -> list[dict[str, Any]]:
    """Every access to one case or call, oldest first (the case's history page)."""
    t = qa_access_log
    keys = [k for k in (case_no, call_id) if k]
    if not keys:
        return []
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).where(
            (t.c.case_no.in_(keys)) | (t.c.call_id.in_(keys))).order_by(t.c.id))).mappings().all()
    return [_jsonable(r) for r in rows]

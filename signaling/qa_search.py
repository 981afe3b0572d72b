"""QA search over recorded calls: filters, server-side paging, one row per call.

A row joins the call (media_calls) with its latest case, its terminal's village, its
clerk's name and its 问题件. Two filters read data other parts own and may change:
`id_number_matches` (the ID number, by its keyed hash) and `satisfaction_column`
(the applicant's rating): each is one function here, switched in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, String, and_, case, func, literal, null, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from approval.tables import cases
from core import records
from core.identity_tables import IdentityVerdict
from core.media_tables import media_calls
from core.ops_figures import RATING_WORDS
from core.ops_tables import ratings
from core.pii import PiiKeys
from core.qa_flags import OPEN_STATES
from core.qa_tables import qa_flags
from verify.idnumber import check_id_number

Outcome = Literal["稍等片刻", "现场开单", "当面说清", "放心回家"]
# The filter's words → the machine verdict a case stores from its identity check.
VERDICT_FILTER = {"pass": IdentityVerdict.PASS.value, "review": IdentityVerdict.REVIEW.value,
                  "fail": IdentityVerdict.FAIL.value}
MANUAL = "人工核验"
VERDICT_NAMES = {"pass": "通过", "review": "人工复核", "fail": "不通过", "manual": MANUAL}


def verdict_name(verdict: str | None, decision: str | None) -> str:
    """What the row shows: the machine's verdict, and 人工核验 when a clerk decided."""
    if decision == MANUAL:
        return f"{MANUAL}（{verdict}）" if verdict else MANUAL
    return verdict or "未核验"


class SearchQuery(BaseModel):
    """The QA page's search form, from the query string (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = Field(default=None, alias="to")
    place: str | None = Field(default=None, max_length=64)  # terminal id or village
    clerk: str | None = Field(default=None, max_length=64)  # username or name
    item: str | None = Field(default=None, max_length=32)
    outcome: Outcome | None = None
    case_no: str | None = Field(default=None, pattern=r"^[0-9]{8}-[0-9A-F]{8}$")
    id_number: str | None = Field(default=None, min_length=15, max_length=24)
    verdict: Literal["pass", "review", "fail", "manual", "none"] | None = None
    satisfaction: str | None = Field(default=None, max_length=16)
    flagged: Literal["open", "any", "none"] | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=20, ge=1, le=100)


def id_number_matches(value: str, pii: PiiKeys) -> ColumnElement[bool]:
    """Exact match on the applicant's ID number: stored encrypted, found by its keyed hash."""
    checked = check_id_number(value, datetime.now().date())
    return cases.c.id_number_hash == pii.search_hash(
        "id_number", checked.normalized if checked.valid else value)


def satisfaction_column() -> ColumnElement[Any]:
    """The applicant's rating of the visit (好差评, `ratings`, one per call), in words."""
    r = ratings.c
    words = case(*((r.rating == k.value, w) for k, w in RATING_WORDS.items()), else_=null())
    return select(words.cast(String)).where(r.call_id == media_calls.c.call_id) \
        .scalar_subquery()


def _latest_case() -> Any:
    """One case per call (the latest submitted), so a call is one row."""
    return (select(cases).where(cases.c.call_id.is_not(None))
            .order_by(cases.c.call_id, cases.c.submitted_at.desc())
            .ext(distinct_on(cases.c.call_id)).subquery("c"))


def _flag_counts() -> Any:
    f = qa_flags.c
    return (select(f.call_id, func.count().label("flags"),
                   func.count().filter(f.state.in_(OPEN_STATES)).label("open_flags"))
            .where(f.call_id.is_not(None)).group_by(f.call_id).subquery("f"))


def _query(q: SearchQuery, pii: PiiKeys) -> Select[Any]:
    m, t, a = media_calls, records.terminals, records.accounts
    c, f = _latest_case(), _flag_counts()
    sat = satisfaction_column()
    stmt = select(
        m.c.call_id, m.c.started_at, m.c.ended_at, m.c.recording_started_at,
        m.c.recording_ended_at, m.c.state, m.c.terminal_id, m.c.clerk_username, m.c.item_code,
        t.c.village, t.c.name.label("terminal_name"), a.c.display_name.label("clerk_name"),
        c.c.case_no, c.c.item_name, c.c.outcome, c.c.status,
        c.c.verification["verdict"].astext.label("verdict"),
        c.c.verification["decision"].astext.label("decision"), sat.label("satisfaction"),
        func.coalesce(f.c.flags, 0).label("flags"),
        func.coalesce(f.c.open_flags, 0).label("open_flags"),
    ).select_from(
        m.outerjoin(c, c.c.call_id == m.c.call_id)
        .outerjoin(t, t.c.terminal_id == m.c.terminal_id)
        .outerjoin(a, a.c.username == m.c.clerk_username)
        .outerjoin(f, f.c.call_id == m.c.call_id))
    where: list[ColumnElement[bool]] = []
    if q.since is not None:
        where.append(m.c.started_at >= q.since)
    if q.until is not None:
        where.append(m.c.started_at < q.until)
    if q.place:
        like = f"%{q.place}%"
        where.append(or_(m.c.terminal_id == q.place, t.c.village.ilike(like),
                         t.c.name.ilike(like)))
    if q.clerk:
        where.append(or_(m.c.clerk_username == q.clerk, a.c.display_name.ilike(f"%{q.clerk}%")))
    if q.item:
        where.append(or_(m.c.item_code == q.item, c.c.item_code == q.item))
    if q.outcome:
        where.append(c.c.outcome == q.outcome)
    if q.case_no:
        where.append(c.c.case_no == q.case_no)
    if q.id_number:
        where.append(c.c.case_no.in_(select(cases.c.case_no).where(
            id_number_matches(q.id_number, pii))))
    if q.verdict == "none":
        where.append(or_(c.c.case_no.is_(None), and_(
            c.c.verification["verdict"].astext.is_(None),
            c.c.verification["decision"].astext.is_(None))))
    elif q.verdict == "manual":
        where.append(c.c.verification["decision"].astext == MANUAL)
    elif q.verdict:
        where.append(c.c.verification["verdict"].astext == VERDICT_FILTER[q.verdict])
    if q.satisfaction:
        where.append(sat == literal(q.satisfaction))
    if q.flagged == "open":
        where.append(f.c.open_flags > 0)
    elif q.flagged == "any":
        where.append(f.c.flags > 0)
    elif q.flagged == "none":
        where.append(f.c.flags.is_(None))
    return stmt.where(and_(*where)) if where else stmt


def _duration(row: Any) -> float | None:
    start = row.recording_started_at or row.started_at
    end = row.recording_ended_at or row.ended_at
    return None if start is None or end is None else round((end - start).total_seconds(), 1)


def _row(row: Any) -> dict[str, Any]:
    return {
        "call_id": row.call_id, "started_at": row.started_at.isoformat(),
        "duration_s": _duration(row), "state": row.state,
        "terminal_id": row.terminal_id, "village": row.village or "",
        "terminal_name": row.terminal_name or "", "clerk": row.clerk_username,
        "clerk_name": row.clerk_name or row.clerk_username,
        "case_no": row.case_no, "item_code": row.item_code, "item_name": row.item_name or "",
        "outcome": row.outcome, "status": row.status, "verdict": row.verdict,
        "verdict_name": verdict_name(row.verdict, row.decision),
        "satisfaction": row.satisfaction, "flags": int(row.flags),
        "open_flags": int(row.open_flags),
    }


async def search(engine: AsyncEngine, q: SearchQuery, pii: PiiKeys) -> dict[str, Any]:
    """One page of matching calls, newest first, and how many match in all."""
    stmt = _query(q, pii)
    async with engine.connect() as conn:
        total = int(await conn.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = (await conn.execute(
            stmt.order_by(media_calls.c.started_at.desc(), media_calls.c.call_id)
            .limit(q.per_page).offset((q.page - 1) * q.per_page))).all()
    return {"total": total, "page": q.page, "per_page": q.per_page,
            "pages": max(1, -(-total // q.per_page)), "rows": [_row(r) for r in rows]}

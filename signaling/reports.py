"""Reports (daily and monthly, by item, village or clerk): visits, cases, 办结率, on-time
rate, average handle and wait, satisfaction — as JSON for the admin page, CSV and XLSX.

The figures are `core.ops_figures.report_rows` (pure) over the period's visit events,
cases and ratings. XLSX by openpyxl (write-only mode, in a thread).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from openpyxl import Workbook
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.tables import cases
from core import records
from core.ops_figures import CaseTiming, Rating, RatingEvent, ReportRow, VisitEvent, VisitKind
from core.ops_figures import report_rows as figures_of
from core.ops_tables import ratings, visit_events
from core.replies import http_error
from signaling.appkeys import CLOCK, ENGINE
from signaling.auth import require_session
from signaling.supervisor import SERVICE_TZ

COLUMNS = ["分组", "来访人次", "接通", "放弃", "办件数", "办结数", "办结率", "按时办结率",
           "平均处理时长（秒）", "平均等待（秒）", "评价数", "满意度"]
BY_WORDS = {"item": "事项", "village": "村", "clerk": "坐席"}


class ReportQuery(BaseModel):
    period: Literal["day", "month"] = "day"
    date: dt.date | None = None
    by: Literal["item", "village", "clerk"] = "item"


def period_bounds(period: str, day: date) -> tuple[datetime, datetime]:
    """[start, end) of the day or month containing `day`, in China time (pure)."""
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start, end = day, day + timedelta(days=1)
    return (datetime(start.year, start.month, start.day, tzinfo=SERVICE_TZ),
            datetime(end.year, end.month, end.day, tzinfo=SERVICE_TZ))


async def load_rows(engine: AsyncEngine, q: ReportQuery, today: date) -> list[ReportRow]:
    start, end = period_bounds(q.period, q.date or today)
    v, c, r, t = visit_events.c, cases.c, ratings.c, records.terminals.c
    async with engine.connect() as conn:
        visits = [VisitEvent(VisitKind(x["kind"]), x["at"].timestamp(), x["ticket_id"],
                             x["item_code"], x["terminal_id"], x["village"], x["clerk"],
                             x["call_id"], x["wait_s"], x["handle_s"])
                  for x in (await conn.execute(select(visit_events).where(
                      v.at >= start, v.at < end))).mappings()]
        found = [CaseTiming(x["item_code"], x["village"] or "", x["clerk"],
                            x["submitted_at"].timestamp(), x["due_at"].timestamp(),
                            x["decided_at"].timestamp() if x["decided_at"] else None)
                 for x in (await conn.execute(
                     select(c.item_code, c.clerk, c.submitted_at, c.due_at, c.decided_at,
                            t.village)
                     .select_from(cases.outerjoin(records.terminals,
                                                  t.terminal_id == c.terminal_id))
                     .where(c.submitted_at >= start, c.submitted_at < end))).mappings()]
        rated = [RatingEvent(x["at"].timestamp(), Rating(x["rating"]), x["item_code"],
                             x["clerk"], x["village"])
                 for x in (await conn.execute(select(ratings).where(
                     r.at >= start, r.at < end))).mappings()]
    return figures_of(visits, found, rated, q.by)


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _secs(x: float | None) -> str:
    return "" if x is None else f"{x:.0f}"


def table(rows: list[ReportRow]) -> list[list[Any]]:
    return [[r.key, r.visits, r.answered, r.abandoned, r.cases, r.done, _pct(r.done_rate),
             _pct(r.on_time_rate), _secs(r.aht_s), _secs(r.asa_s), r.ratings,
             _pct(r.satisfied_share)] for r in rows]


def to_csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()  # the BOM: Excel opens UTF-8 CSV rightly


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    """One sheet: the header row, then a row per group (numbers stay numbers)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "report")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _report(request: web.Request) -> tuple[ReportQuery, list[list[Any]], str]:
    await require_session(request, "admin", "supervisor")
    try:
        q = ReportQuery.model_validate(dict(request.query))
    except ValueError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "报表条件不正确") from exc
    today = datetime.fromtimestamp(request.app[CLOCK](), UTC).astimezone(SERVICE_TZ).date()
    day = q.date or today
    name = (f"{day:%Y-%m}" if q.period == "month" else f"{day:%Y-%m-%d}") + \
        f"-{q.by}"
    return q, table(await load_rows(request.app[ENGINE], q, today)), name


async def report_json(request: web.Request) -> web.Response:
    q, rows, name = await _report(request)
    columns = [BY_WORDS[q.by], *COLUMNS[1:]]
    return web.json_response({"columns": columns, "rows": rows, "name": name})


async def report_csv(request: web.Request) -> web.Response:
    _, rows, name = await _report(request)
    return web.Response(body=to_csv(rows), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="report-{name}.csv"'})


async def report_xlsx(request: web.Request) -> web.Response:
    _, rows, name = await _report(request)
    body = await asyncio.to_thread(to_xlsx, rows, name)
    return web.Response(body=body, headers={
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": f'attachment; filename="report-{name}.xlsx"'})


async def clerk_today(request: web.Request) -> web.Response:
    """The console's own figures for today: calls, average handle time, satisfaction."""
    session = await require_session(request, "clerk")
    now = request.app[CLOCK]()
    today = datetime.fromtimestamp(now, UTC).astimezone(SERVICE_TZ).date()
    rows = await load_rows(request.app[ENGINE], ReportQuery(period="day", date=today,
                                                            by="clerk"), today)
    mine = next((r for r in rows if r.key == session.who), ReportRow(key=session.who))
    return web.json_response({"calls": mine.answered, "aht_s": mine.aht_s,
                              "ratings": mine.ratings,
                              "satisfied_share": mine.satisfied_share})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/clerk/today", clerk_today)
    app.router.add_get("/api/reports", report_json)
    app.router.add_get("/api/reports.csv", report_csv)
    app.router.add_get("/api/reports.xlsx", report_xlsx)

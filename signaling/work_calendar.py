"""The working calendar as signaling uses it: the settings' holidays and 调休 days plus those
entered on the admin page (`calendar_days`), refreshed into the case store so new due
times (a case's steps, a 回访 task) count them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.calendar import WorkCalendar
from core.ops_tables import calendar_days
from core.settings import Settings

REFRESH_S = 60.0  # another node's admin change reaches this one within this


async def load_calendar(engine: AsyncEngine, settings: Settings) -> WorkCalendar:
    base = WorkCalendar.parse(",".join(settings.approval_holidays),
                              ",".join(settings.approval_makeup_days))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(calendar_days))).mappings().all()
    holidays = {r["day"] for r in rows if r["kind"] == "holiday"}
    makeup = {r["day"] for r in rows if r["kind"] == "makeup"}
    return WorkCalendar(base.holidays | holidays, base.makeup_days | makeup)

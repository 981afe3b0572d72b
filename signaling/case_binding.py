"""A case is bound to its call: the call exists, at that terminal, answered by this clerk,
and every scan it names was taken in that call.

Checked server-side when the case is submitted; the clerks of the call (the second one
included) are recorded with the case, so they can read it later.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseSubmission
from core.media_tables import scans
from signaling.queue_store import QueueStore


class CaseBindingError(ValueError):
    """The case does not belong to the call it names; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def bind(redis: aioredis.Redis, engine: AsyncEngine, sub: CaseSubmission,
               clerk: str) -> tuple[str, ...]:
    """The clerks of the case's call, or CaseBindingError."""
    if not sub.call_id:
        raise CaseBindingError("no_call", "办件必须来自一次视频通话")
    call = await QueueStore(redis).call(sub.call_id)
    if call is None:
        raise CaseBindingError("no_call", "没有这次通话的记录")
    if call.terminal_id != sub.terminal_id:
        raise CaseBindingError("wrong_terminal", "办件的终端与这次通话不符")
    if call.clerk != clerk:
        raise CaseBindingError("not_your_call", "只能为您接听的通话登记办件")
    if sub.scans:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(scans.c.scan_id, scans.c.call_id).where(
                scans.c.scan_id.in_(sub.scans)))).all()
        of_call = {r.scan_id for r in rows if r.call_id == sub.call_id}
        if of_call != set(sub.scans):
            raise CaseBindingError("foreign_scan", "有扫描件不属于这次通话")
    return tuple(call.clerks())

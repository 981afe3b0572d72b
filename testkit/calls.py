"""A call on record for tests that submit cases without running one (cases are bound to
their call: its terminal, its clerk, its scans)."""

from __future__ import annotations

import hashlib
import time

import redis.asyncio as aioredis
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys
from core.media_tables import scans as scan_rows
from core.states import CallState
from signaling.queue_records import CallRecord


async def bound_call(redis: aioredis.Redis, engine: AsyncEngine, call_id: str,
                     terminal_id: str, clerk: str, scans: tuple[str, ...] = (),
                     second_clerk: str = "") -> None:
    """The call's record in Redis as routing keeps it, and its scans in PostgreSQL."""
    call = CallRecord(call_id=call_id, ticket_id=f"tk-{call_id}", item_code="",
                      terminal_id=terminal_id, terminal_name=terminal_id, clerk=clerk,
                      clerk_name=clerk, state=CallState.ACTIVE, started_at=time.time(),
                      second_clerk=second_clerk)
    await redis.hset(keys.call(call_id), mapping=call.to_fields())  # type: ignore[arg-type]
    async with engine.begin() as conn:
        for scan_id in scans:
            await conn.execute(insert(scan_rows).values(
                scan_id=scan_id, call_id=call_id, taken_by=clerk,
                path=f"scans/{call_id}/{scan_id}.png", thumb_path="",
                sha256=hashlib.sha256(scan_id.encode()).hexdigest(), width=1, height=1,
                sharpness=0.0).on_conflict_do_nothing())

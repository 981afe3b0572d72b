"""Queue outcomes as events: noted to a Redis stream by routing, copied to PostgreSQL.

Routing notes an event with one XADD (no database round trip in an intent); every node
runs a copier in the consumer group `pg`, so each entry is written to `visit_events` once
(the stream id is unique there, so a redelivery after a crash is harmless). The
supervisor's day and month figures and the reports read the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys
from core.ops_figures import VisitEvent, VisitKind
from core.ops_tables import visit_events

log = logging.getLogger("signaling.visit_log")

STREAM_MAXLEN = 200_000  # about a busy week; PostgreSQL keeps the history
GROUP = "pg"
BATCH = 500
BLOCK_MS = 1000


async def note_visit(redis: aioredis.Redis, event: VisitEvent) -> None:
    """Note one outcome; a failure is logged, never fails the intent that caused it."""
    fields = {k: str(v) for k, v in asdict(event).items()}
    try:
        await redis.xadd(keys.visit_events(), fields,  # type: ignore[arg-type]
                         maxlen=STREAM_MAXLEN, approximate=True)
    except RedisError as exc:
        log.warning("visit event not noted", extra={"kind": event.kind.value,
                                                    "error": repr(exc)})


def event_of(fields: dict[str, str]) -> VisitEvent:
    return VisitEvent(
        kind=VisitKind(fields["kind"]), at=float(fields["at"]), ticket_id=fields["ticket_id"],
        item_code=fields["item_code"], terminal_id=fields.get("terminal_id", ""),
        village=fields.get("village", ""), clerk=fields.get("clerk", ""),
        call_id=fields.get("call_id", ""), wait_s=float(fields.get("wait_s") or 0),
        handle_s=float(fields.get("handle_s") or 0))


def _entries(got: Any) -> list[tuple[str, dict[str, str]]]:
    """XREADGROUP's reply ([[stream, [(id, fields), ...]]]) as (id, fields) pairs."""
    return [(str(i), {str(k): str(v) for k, v in f.items()})
            for _, batch in (got or []) for i, f in batch]


class VisitCopier:
    """Copies the stream into `visit_events` (one consumer per node of the group `pg`)."""

    def __init__(self, redis: aioredis.Redis, engine: AsyncEngine, consumer: str,
                 copied: Callable[[int], None] = lambda n: None) -> None:
        self.copied = copied  # told how many were written (the live view refreshes)
        self.redis = redis
        self.engine = engine
        self.consumer = consumer
        self._pending_first = True  # after a restart, our unacknowledged entries first

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.visit_events(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def once(self) -> int:
        """Copy one batch; returns how many entries were written."""
        start = "0" if self._pending_first else ">"
        try:
            got = await self.redis.xreadgroup(GROUP, self.consumer,
                                              {keys.visit_events(): start}, count=BATCH,
                                              block=None if start == "0" else BLOCK_MS)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # Redis lost the stream (flushed, restarted empty)
            return 0
        entries = _entries(got)
        if self._pending_first and not entries:
            self._pending_first = False
            return 0
        if not entries:
            return 0
        rows = []
        for stream_id, fields in entries:
            e = event_of(fields)
            rows.append(asdict(e) | {"kind": e.kind.value, "stream_id": stream_id,
                                     "at": datetime.fromtimestamp(e.at, UTC)})
        async with self.engine.begin() as conn:
            await conn.execute(insert(visit_events).values(rows).on_conflict_do_nothing(
                index_elements=["stream_id"]))
        await self.redis.xack(keys.visit_events(), GROUP, *[i for i, _ in entries])
        self.copied(len(entries))
        return len(entries)

    async def run_step(self) -> None:
        while await self.once() >= BATCH:
            pass

"""What happened in a call, in order, for the replay's timeline (joined, captures, identity
check, case submitted, hang-up).

The worker notes what it sees (joins, leaves, captures, the end); other parts may note
theirs (an identity check) with the same function. A note that cannot be written is logged
and dropped: the timeline is a reading aid, the call itself must not fail for it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.qa_tables import call_events

log = logging.getLogger(__name__)


class CallEventKind(StrEnum):
    JOINED = "joined"
    LEFT = "left"
    CAPTURE = "capture"
    IDENTITY_CHECK = "identity_check"
    CASE_SUBMITTED = "case_submitted"
    ENDED = "ended"


async def note(engine: AsyncEngine, call_id: str, kind: CallEventKind, at: datetime,
               actor: str = "", detail: dict[str, Any] | None = None) -> None:
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(call_events).values(
                call_id=call_id, at=at, kind=kind.value, actor=actor[:64],
                detail=detail or {}))
    except SQLAlchemyError as exc:
        log.warning("call event not noted", extra={"call": call_id, "kind": kind.value,
                                                   "error": repr(exc)})

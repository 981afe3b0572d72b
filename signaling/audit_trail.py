"""Audit entries written by the HTTP side: logins, reads of personal data, administration.

Each is its own short transaction on the hash-chained log (`core.audit`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from core import audit


async def note(engine: AsyncEngine, actor: str, action: str, subject: str,
               after: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    async with engine.begin() as conn:
        await audit.append(conn, actor[:128], action, subject[:128], None, after,
                           at or datetime.now(UTC))

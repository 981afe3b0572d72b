"""Finding cases by a person's ID number without storing it in the clear: the keyed hash.

For QA (exact search by ID number) and anyone else who must find "this person's cases";
the number itself is never compared or indexed in plaintext.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.tables import cases
from core.pii import PiiKeys


async def cases_with_id_number(engine: AsyncEngine, pii: PiiKeys, id_number: str,
                               limit: int = 100) -> list[dict[str, Any]]:
    """Cases of the person with this ID number, newest first (summaries, no ID number)."""
    wanted = pii.search_hash("id_number", id_number)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(
            cases.c.case_no, cases.c.item_code, cases.c.item_name, cases.c.applicant_name,
            cases.c.status, cases.c.terminal_id, cases.c.call_id, cases.c.clerk,
            cases.c.submitted_at,
        ).where(cases.c.id_number_hash == wanted).order_by(cases.c.submitted_at.desc())
            .limit(limit))).mappings().all()
    return [{**dict(r), "submitted_at": r["submitted_at"].isoformat()} for r in rows]

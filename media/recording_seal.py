"""The worker's seal on a finished recording: (call, segment count, final chain hash) signed
with its evidence key, so a recording whose last segments were cut off no longer matches.

Written once, when the call ends on this worker; a worker that dies mid-call leaves no
seal, and QA then says the tail cannot be proven whole.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.evidence import seal_content
from core.qa_tables import recording_seals
from core.signing import EvidenceKeys, canonical

log = logging.getLogger(__name__)


async def seal_recording(engine: AsyncEngine, keys: EvidenceKeys, call_id: str, segments: int,
                         final_chain_hash: str, now: float) -> bool:
    """Sign and store the recording's end; False (logged) if it could not be stored."""
    ended = datetime.fromtimestamp(now, UTC)
    text = canonical(seal_content(call_id, segments, final_chain_hash, ended.isoformat()))
    try:
        # The first signature may create or read the key file: off the event loop.
        signature, key_id = await asyncio.to_thread(keys.sign, text)
        async with engine.begin() as conn:
            await conn.execute(insert(recording_seals).values(
                call_id=call_id, segments=segments, final_chain_hash=final_chain_hash,
                content=text, signature=signature, key_id=key_id, signed_at=ended,
            ).on_conflict_do_nothing(index_elements=["call_id"]))
    except (SQLAlchemyError, OSError, ValueError) as exc:
        log.error("recording not sealed", extra={"call": call_id, "error": repr(exc)})
        return False
    return True

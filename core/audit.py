"""The audit log: every change with actor, time, before and after, hash-chained.

h_n = SHA-256(entry_n ‖ h_{n-1}); entry_n is the canonical JSON of the row without its
hashes. `python -m core.audit verify` walks the chain, checks the signed checkpoints
(`core.audit_checkpoints`) and names the first broken entry; `python -m core.audit
verify-export FILE` checks an evidence export (`core.evidence_export`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import records
from core.audit_checkpoints import CheckpointWatch, load, signed_properly
from core.signing import EvidenceKeys

GENESIS = "0" * 64
# Appends take this transaction-scoped lock so the chain is one line, never a tree.
_CHAIN_LOCK = 0x61756469


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def entry_hash(entry_id: int, at: datetime, actor: str, action: str, subject: str,
               before: Any, after: Any, prev_hash: str) -> str:
    body = canonical({"id": entry_id, "at": at.astimezone(UTC).isoformat(), "actor": actor,
                      "action": action, "subject": subject, "before": before, "after": after})
    return hashlib.sha256(body.encode() + prev_hash.encode()).hexdigest()


async def append(conn: AsyncConnection, actor: str, action: str, subject: str,
                 before: Any, after: Any, at: datetime) -> str:
    """Add one entry inside the caller's transaction; returns its hash."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    t = records.audit_log
    prev = (await conn.execute(
        select(t.c.entry_hash).order_by(t.c.id.desc()).limit(1))).scalar_one_or_none()
    prev_hash = prev or GENESIS
    entry_id = (await conn.execute(text("SELECT nextval('audit_log_id_seq')"))).scalar_one()
    # Round-trip through JSON so what is hashed equals what JSONB gives back.
    before_j = json.loads(canonical(before)) if before is not None else None
    after_j = json.loads(canonical(after)) if after is not None else None
    h = entry_hash(entry_id, at, actor, action, subject, before_j, after_j, prev_hash)
    await conn.execute(t.insert().values(
        id=entry_id, at=at, actor=actor, action=action, subject=subject, before=before_j,
        after=after_j, prev_hash=prev_hash, entry_hash=h))
    return h


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    action: str
    subject: str
    reason: str


def _check(row: RowMapping, expected_prev: str) -> str | None:
    if row["prev_hash"] != expected_prev:
        return "prev_hash does not match the previous entry (an entry was removed or reordered)"
    h = entry_hash(row["id"], row["at"], row["actor"], row["action"], row["subject"],
                   row["before"], row["after"], row["prev_hash"])
    if h != row["entry_hash"]:
        return "entry_hash does not match its content (the entry was changed)"
    return None


async def verify(engine: AsyncEngine, keys: EvidenceKeys | None = None
                 ) -> tuple[int, ChainBreak | None]:
    """How many entries were checked, and the first broken one if any. With `keys`, the
    signed checkpoints are checked too (a rewritten chain or a cut-off tail)."""
    t = records.audit_log
    expected = GENESIS
    count = 0
    last_id = 0
    async with engine.connect() as conn:
        checkpoints = await load(conn) if keys is not None else []
        for cp in checkpoints:
            problem = signed_properly(cp, keys) if keys is not None else None
            if problem is not None:
                return 0, ChainBreak(cp.upto_id, "checkpoint", "", problem)
        watch = CheckpointWatch(checkpoints)
        result = await conn.stream(select(t).order_by(t.c.id))
        async for row in result.mappings():
            reason = _check(row, expected)
            if reason is None:
                reason = watch.see(row["id"], row["entry_hash"], count + 1)
            if reason is not None:
                return count, ChainBreak(row["id"], row["action"], row["subject"], reason)
            expected = row["entry_hash"]
            last_id = row["id"]
            count += 1
    reason = watch.finish(last_id)
    if reason is not None:
        return count, ChainBreak(last_id, "end of the log", "", reason)
    return count, None


async def _main(database_url: str, keys: EvidenceKeys) -> int:
    engine = records.make_engine(database_url)
    try:
        count, broken = await verify(engine, keys)
    finally:
        await engine.dispose()
    if broken is None:
        print(f"audit chain intact: {count} entries, signed checkpoints hold")
        return 0
    print(f"audit chain BROKEN at entry id={broken.entry_id} "
          f"(action={broken.action}, subject={broken.subject}): {broken.reason}; "
          f"{count} entries before it are intact")
    return 1


if __name__ == "__main__":
    from core.evidence_export import verify_export_command
    from core.settings import Settings

    if sys.argv[1:2] == ["verify-export"]:
        sys.exit(verify_export_command(sys.argv[2:], entry_hash))
    if sys.argv[1:] != ["verify"]:
        print("usage: python -m core.audit verify | verify-export FILE [--keys DIR]",
              file=sys.stderr)
        sys.exit(2)
    settings = Settings.from_env()
    sys.exit(asyncio.run(_main(settings.database_url, settings.evidence_keys)))

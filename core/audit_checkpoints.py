"""Signed checkpoints of the audit chain: (last entry id, its hash, entries so far), signed.

The chain alone shows an entry changed in place, but someone who can write the table could
recompute every hash after an edit, or cut the tail off. A checkpoint signed with an
evidence key at a fixed interval (the approval worker signs them) pins the chain: the entry
it names must still carry the hash it signed. `CheckpointWatch` follows a walk of the
chain and says which checkpoint no longer holds.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import records
from core.qa_tables import audit_checkpoints
from core.signing import EvidenceKeys, canonical


def content(upto_id: int, entry_hash: str, entries: int, signed_at: datetime) -> dict[str, Any]:
    return {"kind": "audit-checkpoint", "upto_id": upto_id, "entry_hash": entry_hash,
            "entries": entries, "signed_at": signed_at.astimezone(UTC).isoformat()}


async def sign_checkpoint(engine: AsyncEngine, keys: EvidenceKeys,
                          now: datetime) -> dict[str, Any] | None:
    """Sign the chain's current end, unless the last checkpoint already covers it."""
    t = records.audit_log
    async with engine.begin() as conn:
        last = (await conn.execute(select(t.c.id, t.c.entry_hash).order_by(t.c.id.desc())
                                   .limit(1))).first()
        if last is None:
            return None
        done = await conn.scalar(select(func.max(audit_checkpoints.c.upto_id)))
        if done is not None and done >= last.id:
            return None
        entries = int(await conn.scalar(select(func.count()).select_from(t)
                                        .where(t.c.id <= last.id)) or 0)
        body = content(int(last.id), str(last.entry_hash), entries, now)
        text = canonical(body)
        signature, key_id = await asyncio.to_thread(keys.sign, text)  # may read the key file
        row = {"upto_id": int(last.id), "entry_hash": str(last.entry_hash), "entries": entries,
               "content": text, "signature": signature, "key_id": key_id, "signed_at": now}
        await conn.execute(insert(audit_checkpoints).values(**row))
    return row


@dataclass(frozen=True)
class Checkpoint:
    id: int
    upto_id: int
    entry_hash: str
    entries: int
    content: str
    signature: str
    key_id: str


async def load(conn: AsyncConnection) -> list[Checkpoint]:
    c = audit_checkpoints.c
    rows = (await conn.execute(select(c.id, c.upto_id, c.entry_hash, c.entries, c.content,
                                      c.signature, c.key_id).order_by(c.upto_id))).all()
    return [Checkpoint(int(r.id), int(r.upto_id), str(r.entry_hash), int(r.entries),
                       str(r.content), str(r.signature), str(r.key_id)) for r in rows]


def signed_properly(cp: Checkpoint, keys: EvidenceKeys) -> str | None:
    """Why the checkpoint itself cannot be trusted (bad signature, columns that differ
    from what was signed), or None."""
    if not keys.check(cp.content, cp.signature, cp.key_id):
        return f"checkpoint #{cp.id}: its signature does not verify with key {cp.key_id!r}"
    try:
        signed = json.loads(cp.content)
    except ValueError:
        return f"checkpoint #{cp.id}: its signed content is unreadable"
    if (signed.get("upto_id"), signed.get("entry_hash"), signed.get("entries")) != (
            cp.upto_id, cp.entry_hash, cp.entries):
        return f"checkpoint #{cp.id}: its columns differ from the signed content"
    return None


class CheckpointWatch:
    """Fed each entry of the chain walk in id order; names the first checkpoint broken."""

    def __init__(self, checkpoints: list[Checkpoint]) -> None:
        self._pending = list(checkpoints)
        self._last_good_id = 0  # the id of the last entry a checkpoint confirmed

    def see(self, entry_id: int, entry_hash: str, count: int) -> str | None:
        if self._pending and self._pending[0].upto_id < entry_id:
            cp = self._pending.pop(0)
            return (f"checkpoint #{cp.id} names entry id={cp.upto_id}, which is missing "
                    "(entries were removed)")
        if self._pending and self._pending[0].upto_id == entry_id:
            cp = self._pending.pop(0)
            if cp.entry_hash != entry_hash:
                return (f"the chain was rewritten after entry id={self._last_good_id}: entry "
                        f"id={entry_id} no longer has the hash checkpoint #{cp.id} signed")
            if cp.entries != count:
                return (f"checkpoint #{cp.id} counted {cp.entries} entries up to id={entry_id}, "
                        f"the log now has {count} (entries were removed or added)")
            self._last_good_id = entry_id
        return None

    def finish(self, last_id: int) -> str | None:
        """After the walk: a checkpoint past the end means the tail was cut off."""
        if self._pending:
            cp = self._pending[0]
            return (f"checkpoint #{cp.id} names entry id={cp.upto_id}, but the log ends at "
                    f"id={last_id} (the last entries were removed)")
        return None

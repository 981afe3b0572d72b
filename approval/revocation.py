"""Signed revocations: the seal signs which certificate was revoked, when, why and by whom,
so a revocation can be told from an edit of the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from approval.eseal import SealKeys, canonical


def revocation_text(certificate_no: str, at: datetime, reason: str, actor: str) -> str:
    """The exact text a revocation's signature covers."""
    return canonical({"revoked": certificate_no, "at": at.astimezone(UTC).isoformat(),
                      "reason": reason, "by": actor})


def revocation_holds(seal: SealKeys, row: dict[str, Any]) -> bool:
    """Whether a revoked certificate's revocation carries a good seal."""
    key_id, _, signature = str(row.get("revocation_signature") or "").partition(".")
    if row.get("revoked_at") is None or not signature:
        return False
    text = revocation_text(row["certificate_no"], row["revoked_at"], row["revoked_reason"],
                           str(row.get("revoked_by") or ""))
    return seal.check(text, signature, key_id)

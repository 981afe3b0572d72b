"""A case's identity result is the server's: the case names a verification of its own call
and terminal (or, when none could finish, an override with a reason), and the server copies
the record into the case. Whatever else the browser put in `verification` is dropped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseSubmission
from core.identity_tables import OVERRIDE_REASONS, IdentityState, IdentityVerdict, identity_checks
from core.pii import PiiKeys
from signaling.case_binding import CaseBindingError


def _override_of(sent: Any) -> dict[str, str] | None:
    if not isinstance(sent, dict):
        return None
    reason, text = str(sent.get("reason") or ""), str(sent.get("text") or "").strip()
    if reason not in OVERRIDE_REASONS or len(text) < 2:
        return None
    return {"reason": reason, "text": text[:500]}


async def bound_verification(engine: AsyncEngine, pii: PiiKeys, sub: CaseSubmission,
                             clerk: str) -> dict[str, Any]:
    """The `verification` the case stores, or CaseBindingError."""
    verification_id = str(sub.verification.get("verification_id") or "")
    if not verification_id:
        manual = _override_of(sub.verification.get("override"))
        if manual is None:
            raise CaseBindingError("no_verification",
                                   "请先完成身份核验，或选择原因并说明后人工核验")
        return {"verification_id": None, "verdict": None, "decision": "人工核验",
                "override": {**manual, "by": clerk}, "distance": None, "thresholds": {}}
    async with engine.connect() as conn:
        row = (await conn.execute(select(identity_checks).where(
            identity_checks.c.verification_id == verification_id))).mappings().first()
    if row is None or row["call_id"] != sub.call_id or row["terminal_id"] != sub.terminal_id:
        raise CaseBindingError("foreign_verification", "身份核验不属于这次通话或这台终端")
    accepted = row["verdict"] == IdentityVerdict.PASS.value or bool(row["override_by"])
    if row["state"] == IdentityState.RUNNING.value:
        raise CaseBindingError("verification_not_decided", "身份核验还没有结束")
    if not accepted:
        raise CaseBindingError("verification_not_accepted",
                               "核验结果为人工复核或不通过，需要选择原因人工核验后才能提交")
    card_number = pii.decrypt(row["id_number_enc"], "identity_checks") \
        if row["id_number_enc"] else None
    override = None if not row["override_by"] else {
        "reason": row["override_reason"], "text": row["override_text"], "by": row["override_by"]}
    return {
        "verification_id": verification_id, "verdict": row["verdict"],
        "decision": IdentityVerdict.PASS.value if row["verdict"] == IdentityVerdict.PASS.value
        else "人工核验",
        "distance": row["distance"], "thresholds": row["thresholds"],
        "model_version": row["model_version"], "attempt": row["attempt"],
        "override": override,
        "id_number_matches_card": None if card_number is None else card_number == sub.id_number,
    }

"""PostgreSQL tables of the approval records (SQLAlchemy Core, created by 0002_approval)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from core import records
from core.records import metadata

cases = Table(
    "cases",
    metadata,
    Column("case_no", String(32), primary_key=True),
    Column("item_code", String(32), nullable=False),
    Column("item_name", String(128), nullable=False),
    Column("terminal_id", String(64), nullable=False),
    Column("call_id", String(64), nullable=True),
    Column("clerk", String(64), nullable=False),
    Column("applicant_name", String(64), nullable=False),
    Column("id_number", Text, nullable=False),  # encrypted (core.pii), never plaintext
    Column("phone", Text, nullable=False),  # encrypted (core.pii)
    Column("scans", JSONB, nullable=False),
    Column("verification", JSONB, nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("status", String(24), nullable=False),
    # Groups with an open task in the current step, for the reviewers' queue.
    Column("open_groups", ARRAY(String(64)), nullable=False),
    Column("state", JSONB, nullable=False),  # approval.workflow.CaseState
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("id_number_hash", String(64), nullable=False, server_default=""),  # keyed, search
    Column("call_clerks", ARRAY(String(64)), nullable=False, server_default="{}"),  # of the call
)

case_materials = Table(
    "case_materials",
    metadata,
    Column("case_no", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("core", Boolean, nullable=False),
    Column("provided", Boolean, nullable=False),
    Column("promised_date", Date, nullable=True),
    Column("arrived_at", DateTime(timezone=True), nullable=True),
)

case_steps = Table(
    "case_steps",
    metadata,
    Column("case_no", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("level", String(16), nullable=False),
    Column("groups", ARRAY(String(64)), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("escalated", Boolean, nullable=False, server_default="false"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_no", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("group_code", String(64), nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # A redelivered task finds its decision here and is applied once.
    UniqueConstraint("case_no", "seq", "group_code", name="decisions_once"),
)

certificates = Table(
    "certificates",
    metadata,
    Column("certificate_no", String(32), primary_key=True),
    Column("case_no", String(32), nullable=False, unique=True),
    Column("content", Text, nullable=False),  # canonical JSON, exactly the signed bytes
    Column("signature", Text, nullable=False),  # base64url Ed25519 signature
    Column("key_id", String(32), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("printed_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_reason", Text, nullable=False, server_default=""),
    Column("revocation_signature", Text, nullable=True),  # the seal over the revocation
    Column("revoked_by", String(64), nullable=True),
)


async def terminals_exists(engine: AsyncEngine, terminal_id: str) -> bool:
    async with engine.connect() as conn:
        row = (await conn.execute(select(records.terminals.c.terminal_id).where(
            records.terminals.c.terminal_id == terminal_id))).first()
    return row is not None

"""PostgreSQL tables of QA and evidence (created by migration 0006_qa).

Several processes share them: the media worker seals recordings and notes call events,
signaling serves QA (access log, 问题件, evaluations, holds), the approval worker runs
retention (tombstones) and signs audit checkpoints.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from core.records import metadata

# --- evidence ---------------------------------------------------------------------------

recording_seals = Table(
    "recording_seals",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("segments", Integer, nullable=False),
    Column("final_chain_hash", String(64), nullable=False),
    Column("content", Text, nullable=False),  # canonical JSON, exactly the signed text
    Column("signature", Text, nullable=False),  # base64url Ed25519
    Column("key_id", String(32), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("upto_id", BigInteger, nullable=False),  # the last audit entry it covers
    Column("entry_hash", String(64), nullable=False),  # that entry's chain hash
    Column("entries", BigInteger, nullable=False),  # how many entries up to it
    Column("content", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("call_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),  # core.call_events.CallEventKind
    Column("actor", String(64), nullable=False, server_default=""),
    Column("detail", JSONB, nullable=False, server_default="{}"),
)

# --- QA ---------------------------------------------------------------------------------

qa_access_log = Table(
    "qa_access_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("viewer", String(64), nullable=False),
    Column("viewer_name", String(128), nullable=False),
    Column("viewer_role", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # replay | download | export
    Column("case_no", String(32), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("purpose", String(16), nullable=False),
    Column("purpose_text", Text, nullable=False, server_default=""),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("watched_s", Float, nullable=False, server_default="0"),
    Column("audit_hash", String(64), nullable=False),  # its entry in the audit chain
)

qa_flags = Table(
    "qa_flags",
    metadata,
    Column("flag_id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_no", String(32), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("at_s", Float, nullable=True),  # a moment of the recording, if flagged there
    Column("category", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("state", String(16), nullable=False),  # core.qa_flags.FlagState
    Column("source", String(16), nullable=False),  # qa | review_return
    Column("assignee", String(64), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

qa_flag_steps = Table(
    "qa_flag_steps",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("flag_id", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)

qa_evaluations = Table(
    "qa_evaluations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_no", String(32), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("clerk", String(64), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("scores", JSONB, nullable=False),  # {item: points}
    Column("total", Float, nullable=False),  # percent of the full marks
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- retention --------------------------------------------------------------------------

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("hold_id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_no", String(32), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("placed_by", String(64), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("released_by", String(64), nullable=True),
    Column("released_at", DateTime(timezone=True), nullable=True),
)

retention_tombstones = Table(
    "retention_tombstones",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # recording | scan | verification
    Column("subject", String(64), nullable=False),  # call id or scan id
    Column("case_no", String(32), nullable=True),
    Column("rule", String(48), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("content_hash", String(64), nullable=False),  # final chain hash or SHA-256
    Column("detail", JSONB, nullable=False),  # files, sizes, segment count
    Column("state", String(8), nullable=False),  # pending (journal) | done
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("kind", "subject", name="tombstone_once"),
)

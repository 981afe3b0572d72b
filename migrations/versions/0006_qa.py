"""QA and evidence: recording seals, audit checkpoints, call events, the QA access log,
问题件 and their steps, evaluations, legal holds, retention tombstones.

Revision ID: 0006_qa
Revises: 0005_security
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_qa"
down_revision = "0005_security"
branch_labels = ("qa",)
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "recording_seals",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("final_chain_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        _ts("signed_at"),
    )
    op.create_table(
        "audit_checkpoints",
        _id("id"),
        sa.Column("upto_id", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        _ts("signed_at"),
    )
    op.create_table(
        "call_events",
        _id("id"),
        sa.Column("call_id", sa.String(64), nullable=False, index=True),
        _ts("at"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "qa_access_log",
        _id("id"),
        sa.Column("viewer", sa.String(64), nullable=False),
        sa.Column("viewer_name", sa.String(128), nullable=False),
        sa.Column("viewer_role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("case_no", sa.String(32), nullable=True, index=True),
        sa.Column("call_id", sa.String(64), nullable=True, index=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("purpose_text", sa.Text, nullable=False, server_default=""),
        _ts("opened_at"), _ts("last_seen_at", True), _ts("closed_at", True),
        sa.Column("watched_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("audit_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN ('replay','download','export')", name="access_kind"),
    )
    op.create_table(
        "qa_flags",
        _id("flag_id"),
        sa.Column("case_no", sa.String(32), nullable=True, index=True),
        sa.Column("call_id", sa.String(64), nullable=True, index=True),
        sa.Column("at_s", sa.Float, nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        _ts("created_at"), _ts("updated_at"),
        sa.CheckConstraint("case_no IS NOT NULL OR call_id IS NOT NULL", name="flag_subject"),
    )
    op.create_table(
        "qa_flag_steps",
        _id("id"),
        sa.Column("flag_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        _ts("at"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "qa_evaluations",
        _id("id"),
        sa.Column("case_no", sa.String(32), nullable=True, index=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("clerk", sa.String(64), nullable=False, index=True),
        sa.Column("evaluator", sa.String(64), nullable=False),
        sa.Column("scores", JSONB, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        _ts("created_at"),
    )
    op.create_table(
        "legal_holds",
        _id("hold_id"),
        sa.Column("case_no", sa.String(32), nullable=True, index=True),
        sa.Column("call_id", sa.String(64), nullable=True, index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        _ts("placed_at"),
        sa.Column("released_by", sa.String(64), nullable=True),
        _ts("released_at", True),
        sa.CheckConstraint("case_no IS NOT NULL OR call_id IS NOT NULL", name="hold_subject"),
    )
    op.create_table(
        "retention_tombstones",
        _id("id"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("case_no", sa.String(32), nullable=True),
        sa.Column("rule", sa.String(48), nullable=False),
        _ts("due_at"),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        _ts("started_at"), _ts("deleted_at", True),
        sa.UniqueConstraint("kind", "subject", name="tombstone_once"),
    )
    # QA searches calls by time and finds a call's case.
    op.create_index("media_calls_started", "media_calls", ["started_at"])
    op.create_index("cases_call", "cases", ["call_id"])


def downgrade() -> None:
    op.drop_index("cases_call", "cases")
    op.drop_index("media_calls_started", "media_calls")
    for table in ("retention_tombstones", "legal_holds", "qa_evaluations", "qa_flag_steps",
                  "qa_flags", "qa_access_log", "call_events", "audit_checkpoints",
                  "recording_seals"):
        op.drop_table(table)

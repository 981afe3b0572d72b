"""Approval records: cases, materials, review steps, decisions, certificates.

Revision ID: 0002_approval
Revises: 0001_backbone
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002_approval"
down_revision = "0001_backbone"
branch_labels = ("approval",)
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_no", sa.String(32), primary_key=True),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("item_name", sa.String(128), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("applicant_name", sa.String(64), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("scans", JSONB, nullable=False),
        sa.Column("verification", JSONB, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("open_groups", ARRAY(sa.String(64)), nullable=False),
        sa.Column("state", JSONB, nullable=False),
        _ts("submitted_at"), _ts("due_at"), _ts("decided_at", True), _ts("updated_at"),
    )
    op.create_index("cases_status", "cases", ["status"])
    op.create_index("cases_open_groups", "cases", ["open_groups"], postgresql_using="gin")
    op.create_index("cases_terminal", "cases", ["terminal_id"])
    op.create_table(
        "case_materials",
        sa.Column("case_no", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("core", sa.Boolean, nullable=False),
        sa.Column("provided", sa.Boolean, nullable=False),
        sa.Column("promised_date", sa.Date, nullable=True),
        _ts("arrived_at", True),
    )
    op.create_table(
        "case_steps",
        sa.Column("case_no", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("groups", ARRAY(sa.String(64)), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        _ts("started_at"), _ts("due_at"), _ts("ended_at", True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("escalated", sa.Boolean, nullable=False, server_default="false"),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_no", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("group_code", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        _ts("at"),
        sa.UniqueConstraint("case_no", "seq", "group_code", name="decisions_once"),
    )
    op.create_table(
        "certificates",
        sa.Column("certificate_no", sa.String(32), primary_key=True),
        sa.Column("case_no", sa.String(32), nullable=False, unique=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        _ts("issued_at"), _ts("printed_at", True), _ts("revoked_at", True),
        sa.Column("revoked_reason", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("certificates", "decisions", "case_steps", "case_materials", "cases"):
        op.drop_table(table)

"""Backbone: accounts, terminals, service items, audit log.

Revision ID: 0001_backbone
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001_backbone"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False, server_default=""),
        sa.Column("skills", ARRAY(sa.String(32)), nullable=False, server_default="{}"),
        sa.Column("jurisdictions", ARRAY(sa.String(12)), nullable=False, server_default="{}"),
        sa.Column("review_groups", ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("role IN ('clerk','reviewer','qa','admin')", name="accounts_role"),
    )
    op.create_table(
        "terminals",
        sa.Column("terminal_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("village", sa.String(128), nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "service_items",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("plain_name", sa.String(128), nullable=False),
        sa.Column("synonyms", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("department", sa.String(128), nullable=False),
        sa.Column("materials", JSONB, nullable=False, server_default="[]"),
        sa.Column("clerk_regions", ARRAY(sa.String(12)), nullable=False, server_default="{}"),
        sa.Column("workflow", JSONB, nullable=False, server_default="{}"),
        sa.Column("time_limit_days", sa.BigInteger, nullable=False, server_default="5"),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.CheckConstraint("level IN ('village','town','district')", name="items_level"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False, server_default=""),
        sa.Column("before", JSONB, nullable=True),
        sa.Column("after", JSONB, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=True),
        sa.Column("entry_hash", sa.String(64), nullable=True),
    )
    op.create_index("audit_log_subject", "audit_log", ["subject"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("service_items")
    op.drop_table("terminals")
    op.drop_table("accounts")

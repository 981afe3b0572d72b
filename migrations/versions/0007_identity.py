"""Identity checks in the call: one row per attempt (verdict, distance, thresholds, model,
liveness, the ID number read, evidence with SHA-256, override).

Revision ID: 0007_identity
Revises: 0006_qa
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_identity"
down_revision = "0006_qa"
branch_labels = None
depends_on = None


def _json(name: str, default: str) -> sa.Column[object]:
    return sa.Column(name, JSONB, nullable=False, server_default=default)


def upgrade() -> None:
    op.create_table(
        "identity_checks",
        sa.Column("verification_id", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(64), nullable=False, index=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=True),
        _json("reasons", "[]"),
        sa.Column("distance", sa.Float, nullable=True),
        _json("thresholds", "{}"),
        sa.Column("model_version", sa.String(64), nullable=False, server_default=""),
        _json("challenge", "[]"),
        _json("liveness", "{}"),
        _json("match", "{}"),
        sa.Column("id_number_enc", sa.Text, nullable=True),
        sa.Column("id_number_masked", sa.String(32), nullable=True),
        _json("id_read", "{}"),
        _json("evidence", "[]"),
        _json("timings", "{}"),
        sa.Column("override_reason", sa.String(64), nullable=True),
        sa.Column("override_text", sa.Text, nullable=True),
        sa.Column("override_by", sa.String(64), nullable=True),
        sa.Column("override_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("identity_checks")

"""Media: calls placed on workers, recording segments (hash chain), scans.

Revision ID: 0003_media
Revises: 0001_backbone
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_media"
down_revision = "0001_backbone"
branch_labels = ("media",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_calls",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("clerk_username", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recording_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recording_ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),  # relative to the storage root
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.UniqueConstraint("call_id", "seq"),
    )
    op.create_table(
        "scans",
        sa.Column("scan_id", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(64), nullable=False, index=True),
        sa.Column("taken_by", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),  # relative to the storage root
        sa.Column("thumb_path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("sharpness", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("scans")
    op.drop_table("recording_segments")
    op.drop_table("media_calls")

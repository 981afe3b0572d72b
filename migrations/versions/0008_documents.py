"""Document scans: material, page, original and flattened files with their hashes.

Revision ID: 0008_documents
Revises: 0006_qa
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_documents"
down_revision = "0007_identity"
branch_labels = ("documents",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_scans",
        sa.Column("scan_id", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("material_code", sa.String(32), nullable=False),
        sa.Column("material_name", sa.String(64), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("taken_by", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("original_path", sa.Text, nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("flat_path", sa.Text, nullable=False),
        sa.Column("flat_sha256", sa.String(64), nullable=False),
        sa.Column("source_width", sa.Integer, nullable=False),
        sa.Column("source_height", sa.Integer, nullable=False),
        sa.Column("flat_width", sa.Integer, nullable=False),
        sa.Column("flat_height", sa.Integer, nullable=False),
        sa.Column("source_dpi", sa.Float, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("similarity", sa.Float, nullable=True),
        sa.Column("from_video", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reused_from", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("document_scans_call", "document_scans", ["call_id"])
    op.create_index("document_scans_terminal", "document_scans", ["terminal_id", "material_code"])


def downgrade() -> None:
    op.drop_table("document_scans")

"""Running the service: the supervisor role, visit events (queue outcomes), satisfaction
ratings (好差评), follow-up (回访) tasks, holidays and 调休 days, the 办事指南 of an item.

Revision ID: 0009_ops
Revises: 0006_qa
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009_ops"
down_revision = "0008_documents"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.drop_constraint("accounts_role", "accounts", type_="check")
    op.create_check_constraint("accounts_role", "accounts",
                               "role IN ('clerk','reviewer','qa','admin','supervisor')")
    op.create_table(
        "visit_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(32), nullable=False, unique=True),  # once per entry
        sa.Column("kind", sa.String(16), nullable=False),
        _ts("at"),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("village", sa.String(128), nullable=False, server_default=""),
        sa.Column("clerk", sa.String(64), nullable=False, server_default=""),
        sa.Column("call_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("wait_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("handle_s", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("visit_events_at", "visit_events", ["at"])
    op.create_table(
        "ratings",
        sa.Column("call_id", sa.String(64), primary_key=True),  # one rating per call
        sa.Column("case_no", sa.String(32), nullable=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("village", sa.String(128), nullable=False, server_default=""),
        sa.Column("rating", sa.String(24), nullable=False),
        sa.Column("reasons", JSONB, nullable=False, server_default="[]"),
        _ts("at"),
        sa.CheckConstraint("rating IN ('very_satisfied','satisfied','fairly_satisfied',"
                           "'dissatisfied')", name="rating_value"),
    )
    op.create_index("ratings_at", "ratings", ["at"])
    op.create_table(
        "followups",
        sa.Column("followup_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), nullable=False, unique=True),
        sa.Column("case_no", sa.String(32), nullable=True),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("reasons", JSONB, nullable=False, server_default="[]"),
        _ts("opened_at"), _ts("due_at"), _ts("closed_at", True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),  # holiday | makeup (调休)
        sa.Column("name", sa.String(64), nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('holiday','makeup')", name="calendar_kind"),
    )
    op.add_column("service_items", sa.Column("guide", JSONB, nullable=False,
                                             server_default="{}"))


def downgrade() -> None:
    op.drop_column("service_items", "guide")
    for table in ("calendar_days", "followups", "ratings", "visit_events"):
        op.drop_table(table)
    op.drop_constraint("accounts_role", "accounts", type_="check")
    op.create_check_constraint("accounts_role", "accounts",
                               "role IN ('clerk','reviewer','qa','admin')")

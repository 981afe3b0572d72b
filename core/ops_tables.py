"""PostgreSQL tables of running the service (created by migration 0009_ops): visit
events (queue outcomes), ratings (好差评), follow-up tasks (回访), holidays and 调休."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Float, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from core.records import metadata

visit_events = Table(
    "visit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("stream_id", String(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # core.ops_figures.VisitKind
    Column("at", DateTime(timezone=True), nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("item_code", String(32), nullable=False),
    Column("terminal_id", String(64), nullable=False, server_default=""),
    Column("village", String(128), nullable=False, server_default=""),
    Column("clerk", String(64), nullable=False, server_default=""),
    Column("call_id", String(64), nullable=False, server_default=""),
    Column("wait_s", Float, nullable=False, server_default="0"),
    Column("handle_s", Float, nullable=False, server_default="0"),
)

ratings = Table(
    "ratings",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("case_no", String(32), nullable=True),
    Column("terminal_id", String(64), nullable=False),
    Column("clerk", String(64), nullable=False),
    Column("item_code", String(32), nullable=False, server_default=""),
    Column("village", String(128), nullable=False, server_default=""),
    Column("rating", String(24), nullable=False),  # core.ops_figures.Rating
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("at", DateTime(timezone=True), nullable=False),
)

followups = Table(
    "followups",
    metadata,
    Column("followup_id", BigInteger, primary_key=True, autoincrement=True),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("case_no", String(32), nullable=True),
    Column("clerk", String(64), nullable=False),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Column("note", Text, nullable=True),
)

calendar_days = Table(
    "calendar_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", String(8), nullable=False),  # holiday | makeup
    Column("name", String(64), nullable=False, server_default=""),
)

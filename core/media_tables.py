"""PostgreSQL tables of calls, recordings and scans (created by migration 0003_media).

The media worker writes them; signaling and QA read them, so they live below both.
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
    func,
)

from core.records import metadata

media_calls = Table(
    "media_calls",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("worker_id", String(128), nullable=False),
    Column("terminal_id", String(64), nullable=False),
    Column("clerk_username", String(64), nullable=False),
    Column("item_code", String(32), nullable=False, server_default=""),
    Column("state", String(16), nullable=False, server_default="active"),  # active|ended|failed
    Column("end_reason", String(64), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("recording_started_at", DateTime(timezone=True), nullable=True),
    Column("recording_ended_at", DateTime(timezone=True), nullable=True),
)

recording_segments = Table(
    "recording_segments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("call_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("chain_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

scans = Table(
    "scans",
    metadata,
    Column("scan_id", String(64), primary_key=True),
    Column("call_id", String(64), nullable=False),
    Column("taken_by", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("thumb_path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sharpness", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

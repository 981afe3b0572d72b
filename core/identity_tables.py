"""PostgreSQL table of identity checks (created by migration 0007_identity): one row per
attempt, bound to its call, terminal and clerk.

The media worker writes the check; signaling writes an override and reads the record for
the clerk and the reviewers. Evidence images stay under the storage root
(`verification/<call id>/`), each listed here with its SHA-256.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, DateTime, Float, Integer, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from core.records import metadata


class IdentityVerdict(StrEnum):
    PASS = "通过"
    REVIEW = "人工复核"
    FAIL = "不通过"


class IdentityState(StrEnum):
    RUNNING = "running"
    DECIDED = "decided"
    ABORTED = "aborted"  # no verdict: card not found, timeout, the worker stopped...


# Why a clerk may accept a 人工复核 / 不通过 result (the text field says more).
OVERRIDE_REASONS: tuple[str, ...] = (
    "证件照片年代久远",
    "面部有伤或遮挡",
    "老人无法完成动作",
    "残障人士无法完成动作",
    "摄像头或光线条件差",
    "其他（请在说明中写明）",
)

identity_checks = Table(
    "identity_checks",
    metadata,
    Column("verification_id", String(64), primary_key=True),
    Column("call_id", String(64), nullable=False, index=True),
    Column("terminal_id", String(64), nullable=False),
    Column("clerk", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # IdentityState
    Column("verdict", String(8), nullable=True),  # IdentityVerdict, once decided
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("distance", Float, nullable=True),
    Column("thresholds", JSONB, nullable=False, server_default="{}"),
    Column("model_version", String(64), nullable=False, server_default=""),
    Column("challenge", JSONB, nullable=False, server_default="[]"),
    Column("liveness", JSONB, nullable=False, server_default="{}"),
    Column("match", JSONB, nullable=False, server_default="{}"),
    Column("id_number_enc", Text, nullable=True),  # core.pii, place "identity_checks"
    Column("id_number_masked", String(32), nullable=True),
    Column("id_read", JSONB, nullable=False, server_default="{}"),
    Column("evidence", JSONB, nullable=False, server_default="[]"),  # [{kind, path, sha256}]
    Column("timings", JSONB, nullable=False, server_default="{}"),
    Column("override_reason", String(64), nullable=True),
    Column("override_text", Text, nullable=True),
    Column("override_by", String(64), nullable=True),
    Column("override_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

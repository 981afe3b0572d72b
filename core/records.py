"""PostgreSQL tables shared by every process (SQLAlchemy Core).

Alembic migrations in `migrations/` create them; this module is what code queries with.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(128), nullable=False),
    Column("role", String(16), nullable=False),  # clerk | reviewer | qa | admin
    Column("password_hash", Text, nullable=False),
    Column("region_code", String(12), nullable=False, server_default=""),
    # Service item codes a clerk may handle; reviewers use review_groups instead.
    Column("skills", ARRAY(String(32)), nullable=False, server_default="{}"),
    # Region-code prefixes whose matters this clerk may take (属地办理).
    Column("jurisdictions", ARRAY(String(12)), nullable=False, server_default="{}"),
    Column("review_groups", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

terminals = Table(
    "terminals",
    metadata,
    Column("terminal_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("village", String(128), nullable=False),
    Column("region_code", String(12), nullable=False),
    Column("token_hash", String(64), nullable=False),  # SHA-256 hex of the device token
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Enrolment (0005_security): a one-time code's SHA-256 and expiry; a rotation asked for.
    Column("enrol_code_hash", String(64), nullable=True),
    Column("enrol_expires_at", DateTime(timezone=True), nullable=True),
    Column("rotate_pending", Boolean, nullable=False, server_default="false"),
    Column("staff_pin_hash", Text, nullable=True),  # Argon2id of the village staff's PIN
    # Region-code prefixes this kiosk may route to besides its own (跨省通办 partners).
    Column("handling_regions", ARRAY(String(12)), nullable=False, server_default="{}"),
    Column("priority_allowed", Boolean, nullable=False, server_default="true"),
)

service_items = Table(
    "service_items",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("plain_name", String(128), nullable=False),
    Column("synonyms", ARRAY(Text), nullable=False, server_default="{}"),
    Column("category", String(32), nullable=False),
    Column("level", String(16), nullable=False),  # village | town | district
    Column("department", String(128), nullable=False),
    # [{"name": "...", "core": true}] — core materials can never be missing (容缺).
    Column("materials", JSONB, nullable=False, server_default="[]"),
    # Region-code prefixes whose clerks may handle this item.
    Column("clerk_regions", ARRAY(String(12)), nullable=False, server_default="{}"),
    # Review configuration used by the approval workflow.
    Column("workflow", JSONB, nullable=False, server_default="{}"),
    Column("time_limit_days", BigInteger, nullable=False, server_default="5"),
    Column("active", Boolean, nullable=False, server_default="true"),
    # 办事指南 (0009_ops): {"steps": [...], "fees": "...", "notes": "..."}
    Column("guide", JSONB, nullable=False, server_default="{}"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False, server_default=""),
    Column("before", JSONB, nullable=True),
    Column("after", JSONB, nullable=True),
    # Hash chain (h_n = SHA-256(entry_n || h_{n-1})); filled by core.audit.
    Column("prev_hash", String(64), nullable=True),
    Column("entry_hash", String(64), nullable=True),
)


def make_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(database_url, pool_size=5, max_overflow=10, pool_pre_ping=True)


# SQLSTATE classes meaning "the server is not there right now": connection exceptions (08)
# and operator intervention (57: shutting down, crashed, starting up).
_AWAY_CLASSES = ("08", "57")


def database_away(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL is away (down, restarting, starting up): worth a retry
    or a "not saved" answer, unlike a refused statement."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    cause: BaseException | None = exc
    for _ in range(5):  # asyncpg's own error sits a few causes down, with its SQLSTATE
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _AWAY_CLASSES:
            return True
        cause = None if cause is None else (cause.__cause__ or getattr(cause, "orig", None))
        if cause is None:
            break
    return False

"""Which database errors mean "PostgreSQL is away" (retry, or tell the person it was not
saved) and which are a refused statement (never retried)."""

from __future__ import annotations

import asyncpg.exceptions as pg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from core.records import database_away


def _wrapped(orig: BaseException, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("INSERT …", {}, orig)


def test_a_server_starting_up_or_shutting_down_is_away() -> None:
    assert database_away(_wrapped(pg.CannotConnectNowError("the database system is starting up")))
    assert database_away(_wrapped(pg.AdminShutdownError("terminating connection")))
    assert database_away(_wrapped(pg.ConnectionDoesNotExistError("connection was closed")))
    assert database_away(OperationalError("connect", {}, ConnectionRefusedError(111)))
    assert database_away(ConnectionRefusedError(111, "Connect call failed"))


def test_a_refused_statement_is_not_away() -> None:
    assert not database_away(_wrapped(pg.UniqueViolationError("duplicate key"), IntegrityError))
    assert not database_away(_wrapped(pg.UndefinedColumnError("no such column")))
    assert not database_away(ValueError("not a database error"))

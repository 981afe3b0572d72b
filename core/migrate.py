"""Apply every Alembic migration branch (upgrade to all heads), as the database's owner.

The processes then connect as the `vwindow_app` role the migrations grant (it may add to
the audit log, never change or delete it): with `APP_DB_PASSWORD` set, this step also gives
that role its login and password.
"""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core.records import make_engine
from core.settings import ROOT

APP_ROLE = "vwindow_app"


def upgrade(database_url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, "heads")


async def _allow_login(database_url: str, password: str | None) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            if password is None:  # a local cluster with trust authentication
                await conn.execute(text(f"ALTER ROLE {APP_ROLE} WITH LOGIN"))
            else:  # ALTER ROLE takes no bind parameters: a quoted literal
                quoted = "'" + password.replace("'", "''") + "'"
                await conn.execute(text(f"ALTER ROLE {APP_ROLE} WITH LOGIN PASSWORD {quoted}"))
    finally:
        await engine.dispose()


def allow_app_login(database_url: str, password: str | None = None) -> None:
    asyncio.run(_allow_login(database_url, password))


def app_url(owner_url: str, password: str | None = None) -> str:
    """The same database as the least-privileged application role."""
    scheme, _, rest = owner_url.partition("://")
    host = rest.rpartition("@")[2]
    who = APP_ROLE if password is None else f"{APP_ROLE}:{password}"
    return f"{scheme}://{who}@{host}"


if __name__ == "__main__":
    from core.settings import Settings

    settings = Settings.from_env()
    upgrade(settings.database_url)
    if settings.app_db_password:
        allow_app_login(settings.database_url, settings.app_db_password)

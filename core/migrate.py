"""Apply every Alembic migration branch (upgrade to all heads)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from core.settings import ROOT


def upgrade(database_url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, "heads")


if __name__ == "__main__":
    from core.settings import Settings

    upgrade(Settings.from_env().database_url)

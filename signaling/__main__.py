"""`python -m signaling`: run one signaling node with settings from the environment."""

from __future__ import annotations

from aiohttp import web

from core.logs import setup_logging
from core.settings import Settings
from signaling.app import create_app


def main() -> None:
    settings = Settings.from_env()
    setup_logging()
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                access_log=None, print=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()

"""`python -m media`: run one media worker with settings from the environment."""

from __future__ import annotations

import logging

from aiohttp import web

from core.settings import Settings
from media.app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.media_host, port=settings.media_port,
                print=None, handle_signals=True)


if __name__ == "__main__":
    main()

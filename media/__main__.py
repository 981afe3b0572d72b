"""`python -m media`: run one media worker with settings from the environment."""

from __future__ import annotations

from aiohttp import web

from core.hardening import refuse_unsafe
from core.logs import setup_logging
from core.settings import Settings
from core.tls import server_context
from media.app import create_app


def main() -> None:
    settings = Settings.from_env()
    refuse_unsafe(settings, "media")
    setup_logging()
    web.run_app(create_app(settings), host=settings.media_host, port=settings.media_port,
                access_log=None, print=None, handle_signals=True,
                ssl_context=server_context(settings.media_tls_cert_file,
                                           settings.media_tls_key_file))


if __name__ == "__main__":
    main()

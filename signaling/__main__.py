"""`python -m signaling`: run one signaling node with settings from the environment.

The process also owns its garbage collection policy: a full collection walks every
tracked object (about 110 per open websocket) and holds the event loop meanwhile, about
0.2 s with 2,000 terminals connected. What start-up made is frozen out of collections,
automatic full collections are off, and one runs every FULL_COLLECTION_S instead, so a
stall is rare and logged rather than every few seconds under load. Young collections
(milliseconds) run as usual.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from core.hardening import refuse_unsafe
from core.logs import setup_logging
from core.settings import Settings
from core.tls import server_context
from signaling.app import create_app

log = logging.getLogger("signaling.main")

FULL_COLLECTION_S = 300.0
NO_AUTOMATIC_FULL = 1_000_000  # young collections between automatic full ones: never


async def _full_collections() -> None:
    while True:
        await asyncio.sleep(FULL_COLLECTION_S)
        started = time.perf_counter()
        found = gc.collect()
        log.info("full collection", extra={"ms": round((time.perf_counter() - started) * 1000),
                                           "collected": found})


async def _collection_policy(app: web.Application) -> AsyncIterator[None]:
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)
    task = asyncio.create_task(_full_collections(), name="full-collections")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def main() -> None:
    settings = Settings.from_env()
    refuse_unsafe(settings, "signaling")
    setup_logging()
    app = create_app(settings)
    app.cleanup_ctx.append(_collection_policy)  # after the app's own start-up
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None,
                shutdown_timeout=5,
                ssl_context=server_context(settings.tls_cert_file, settings.tls_key_file))


if __name__ == "__main__":
    main()

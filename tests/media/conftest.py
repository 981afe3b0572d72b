"""Fixtures for the media tests: an in-process worker and a bare signaling app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.localstack import free_port
from core.records import make_engine
from core.settings import Settings
from media.app import create_app
from signaling.appkeys import ENGINE, REDIS, SETTINGS


def media_settings(settings: Settings, **overrides: object) -> Settings:
    port = free_port()
    base: dict[str, object] = dict(
        media_host="127.0.0.1", media_port=port, media_ice_hosts=("127.0.0.1",),
        media_worker_id=f"media-test-{port}", media_segment_s=2.0, media_grace_s=2.0,
        join_token_secret="test-join-secret",
    )
    base.update(overrides)
    return replace(settings, **base)  # type: ignore[arg-type]


@dataclass
class Worker:
    settings: Settings
    server: TestServer

    @property
    def url(self) -> str:
        return self.settings.media_url


@pytest.fixture
async def worker(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Worker]:
    s = media_settings(settings)
    server = TestServer(create_app(s), host="127.0.0.1", port=s.media_port)
    await server.start_server()
    try:
        yield Worker(s, server)
    finally:
        await server.close()


@pytest.fixture
async def signaling_app(worker: Worker, redis: aioredis.Redis) -> AsyncIterator[web.Application]:
    """What signaling.calls needs from the signaling app: settings, Redis, the engine."""
    app = web.Application()
    app[SETTINGS] = worker.settings
    app[REDIS] = redis
    app[ENGINE] = make_engine(worker.settings.database_url)
    try:
        yield app
    finally:
        await app[ENGINE].dispose()


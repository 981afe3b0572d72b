"""Fixtures for the media tests: an in-process worker and signaling's placement on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from core.clock import wall
from core.records import make_engine
from core.settings import Settings
from media.app import create_app
from signaling.placement import WorkerPlacement
from testkit.localstack import free_port


def media_settings(settings: Settings, **overrides: object) -> Settings:
    port = free_port()
    base: dict[str, object] = dict(
        media_host="127.0.0.1", media_port=port, media_ice_hosts=("127.0.0.1",),
        media_worker_id=f"media-test-{port}", media_segment_s=2.0, media_grace_s=2.0,
        media_verify_processes=0,  # tests that check identity or documents ask for a pool
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
async def placement(worker: Worker, redis: aioredis.Redis) -> AsyncIterator[WorkerPlacement]:
    """Signaling's side of call set-up, on its own Redis client, engine and HTTP session."""
    engine = make_engine(worker.settings.database_url)
    http = aiohttp.ClientSession()
    try:
        yield WorkerPlacement(worker.settings, redis, engine, http, wall)
    finally:
        await http.close()
        await engine.dispose()


"""Shared fixtures: a real redis-server and a real PostgreSQL cluster started for the run.

Both listen on free ports on 127.0.0.1 under a temporary folder and stop at the end.
Redis is flushed before each test that asks for it; the database is migrated and seeded
once per run (tests that write create their own rows).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.migrate import upgrade
from core.settings import Settings
from testkit.localstack import PostgresServer, RedisServer, private_servers

TESTDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"
FACES = TESTDATA / "faces"


@dataclass
class Stack:
    redis: RedisServer
    postgres: PostgresServer
    folder: Path


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack")
    os.chmod(folder, 0o755)
    for parent in folder.parents:
        if str(parent).startswith("/tmp/"):
            os.chmod(parent, 0o755)  # the postgres account must reach its data folder
    with private_servers(folder) as (redis, pg):
        upgrade(pg.url)
        from testkit.demo import seed_demo

        asyncio.run(seed_demo(pg.url))
        yield Stack(redis, pg, folder)


@pytest.fixture
def settings(stack: Stack, tmp_path: Path) -> Settings:
    base = Settings.from_env({})
    return replace(
        base,
        redis_url=stack.redis.url,
        database_url=stack.postgres.url,
        storage_root=tmp_path / "storage",
        evidence_key_dir=tmp_path / "evidence",
        port=0,
        run_mode="local",  # the test stacks are make-run-like: demo data and secrets
        pii_key_file=stack.folder / "pii.key",  # one key for the run's shared database
    )


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def faces() -> Path:
    if not FACES.is_dir():
        pytest.skip(f"test faces not found at {FACES} (see ../shared/testdata/README.md)")
    return FACES

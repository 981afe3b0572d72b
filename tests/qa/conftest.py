"""Fixtures for the QA and evidence tests: a database of one's own (tampering and moving
the clock on must not touch the shared one), recorded calls, a case store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore, make_store
from core import records
from core import worker_registry as registry
from core.migrate import upgrade
from core.settings import Settings
from core.worker_registry import WorkerInfo
from signaling.app import create_app
from testkit.demo import DEMO_PASSWORD, DEMO_TERMINALS, seed_demo
from testkit.recordings import RecordedCall, make_recorded_call
from tests.conftest import Stack

TEMPLATE = "qa_template"


async def _sql(stack: Stack, statement: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=stack.postgres.port, user="postgres",
                                 database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _url(stack: Stack, name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{stack.postgres.port}/{name}"


@pytest.fixture(scope="session")
def qa_template(stack: Stack) -> str:
    """A migrated, seeded database to copy: each test gets its own copy in a moment."""
    asyncio.run(_sql(stack, f"CREATE DATABASE {TEMPLATE}"))
    upgrade(_url(stack, TEMPLATE))
    asyncio.run(seed_demo(_url(stack, TEMPLATE)))
    return TEMPLATE


@pytest.fixture
def own_db(stack: Stack, qa_template: str) -> Iterator[str]:
    name = "qa_" + secrets.token_hex(4)
    asyncio.run(_sql(stack, f"CREATE DATABASE {name} TEMPLATE {qa_template}"))
    yield _url(stack, name)
    asyncio.run(_sql(stack, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def qa_settings(settings: Settings, own_db: str) -> Settings:
    return replace(settings, database_url=own_db, eseal_key_dir=settings.storage_root.parent
                   / "eseal")


@pytest.fixture
async def engine(qa_settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = records.make_engine(qa_settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine, qa_settings: Settings) -> CaseStore:
    return make_store(engine, qa_settings)


Client = TestClient[web.Request, web.Application]
WORKER_URL = "http://127.0.0.1:9"  # registered only: no test here fetches from it


@pytest.fixture
async def client(aiohttp_client: Any, qa_settings: Settings, redis: aioredis.Redis) -> Client:
    """The whole signaling app (policy middleware included) on the test's own database,
    with one live media worker in the registry to hand replays to."""
    await registry.register(redis, WorkerInfo("media-qa", WORKER_URL, 4, 0.0, 0, 1, 0.0), 60)
    c: Client = await aiohttp_client(create_app(qa_settings))
    return c


async def login(client: Client, username: str) -> None:
    await client.post("/api/logout")
    if username == "terminal":
        resp = await client.post("/api/terminal/session", json={"token": DEMO_TERMINALS[0].token})
    else:
        resp = await client.post("/api/login", json={"username": username,
                                                     "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()


async def recorded(engine: AsyncEngine, settings: Settings, store: CaseStore | None = None,
                   **kwargs: Any) -> RecordedCall:
    return await make_recorded_call(engine, settings.storage_root, settings.evidence_keys,
                                    seconds=kwargs.pop("seconds", 3),
                                    segment_s=kwargs.pop("segment_s", 1.0), store=store,
                                    **kwargs)

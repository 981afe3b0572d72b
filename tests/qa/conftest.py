"""Fixtures for the QA and evidence tests: a database of one's own (tampering and moving
the clock on must not touch the shared one), recorded calls, a case store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore, make_store
from core import records
from core.migrate import upgrade
from core.settings import Settings
from testkit.demo import seed_demo
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

"""A signaling app on the real stores for the security tests, and callers of every kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from core.settings import Settings
from signaling.app import create_app
from testkit.clock import JumpClock
from testkit.demo import DEMO_PASSWORD, DEMO_TERMINALS

TOKENS = {t.terminal_id: t.token for t in DEMO_TERMINALS}


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
def sec_settings(settings: Settings) -> Settings:
    return replace(settings, public_url="http://127.0.0.1:8080")


@pytest.fixture
async def server(sec_settings: Settings, redis: aioredis.Redis,
                 clock: JumpClock) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(sec_settings, clock=clock))
    await srv.start_server()
    yield srv
    await srv.close()


def browser(server: TestServer) -> ClientSession:
    return ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))


async def staff(server: TestServer, username: str) -> ClientSession:
    s = browser(server)
    resp = await s.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    return s


async def terminal(server: TestServer, terminal_id: str) -> ClientSession:
    s = browser(server)
    resp = await s.post("/api/terminal/session", json={"token": TOKENS[terminal_id]})
    assert resp.status == 200, await resp.text()
    return s

"""A terminal enrols once with a one-time code and keeps an HttpOnly device cookie; an
administrator rotates or revokes it; the old `?token=` form is refused in production
(issue 16, item 7)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from sqlalchemy import delete

from core import records
from core.pii import keys_for
from core.settings import Settings
from signaling.app import create_app
from signaling.appkeys import ENGINE
from signaling.terminal_enrolment import (
    NewTerminal,
    issue_enrolment_code,
    redeem_enrolment_code,
    register_terminal,
    request_rotation,
)
from tests.security.conftest import TOKENS, browser


@pytest.fixture
async def prod(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    """The app as production runs it (only the settings the test stack cannot give)."""
    keys_for(settings.pii_key_file, local=True)  # made once, as the admin command would
    srv = TestServer(create_app(replace(settings, run_mode="production")))
    await srv.start_server()
    yield srv
    await srv.close()


async def _new_terminal(srv: TestServer) -> tuple[str, str]:
    engine = srv.app[ENGINE]
    tid = f"T-TEST-{secrets.token_hex(3)}"
    async with engine.begin() as conn:
        await conn.execute(delete(records.terminals).where(records.terminals.c.terminal_id == tid))
    await register_terminal(engine, "admin", NewTerminal(tid, "测试服务点", "测试村", "420115"))
    return tid, await issue_enrolment_code(engine, "admin", tid, datetime.now(UTC))


async def test_a_one_time_code_enrols_the_kiosk_with_an_httponly_cookie(prod: TestServer) -> None:
    tid, code = await _new_terminal(prod)
    async with browser(prod) as kiosk:
        assert (await kiosk.post("/api/terminal/session", json={})).status == 401
        resp = await kiosk.post("/api/terminal/enrol", json={"code": code.lower()})
        assert resp.status == 200 and (await resp.json())["who"] == tid
        cookie = resp.cookies["vw_device"]
        assert cookie["httponly"] and cookie["path"] == "/api/terminal"
        assert cookie.value not in str(resp.url) and cookie.value not in await resp.text()
        await kiosk.post("/api/logout")
        again = await kiosk.post("/api/terminal/session", json={})  # the next morning
        assert again.status == 200 and (await again.json())["who"] == tid
    async with browser(prod) as other:
        used = await other.post("/api/terminal/enrol", json={"code": code})
        assert used.status == 401 and (await used.json())["error"]["code"] == "bad_code"


async def test_the_old_token_url_is_refused_outside_make_run(prod: TestServer) -> None:
    async with browser(prod) as kiosk:
        resp = await kiosk.post("/api/terminal/session",
                                json={"token": TOKENS["T-420115-001"]})
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "enrol_required"


async def test_rotation_replaces_the_credential_at_the_next_session(prod: TestServer) -> None:
    tid, code = await _new_terminal(prod)
    engine = prod.app[ENGINE]
    async with browser(prod) as kiosk:
        enrolled = await kiosk.post("/api/terminal/enrol", json={"code": code})
        old = enrolled.cookies["vw_device"].value
        await request_rotation(engine, "admin", tid)
        rotated = await kiosk.post("/api/terminal/session", json={})
        assert rotated.status == 200
        new = rotated.cookies["vw_device"].value
        assert new and new != old
    async with browser(prod) as thief:  # someone who copied the old cookie
        thief.cookie_jar.update_cookies({"vw_device": old})
        assert (await thief.post("/api/terminal/session", json={})).status == 401


async def test_an_expired_code_enrols_nothing(prod: TestServer) -> None:
    _, code = await _new_terminal(prod)
    later = datetime.now(UTC) + timedelta(hours=25)
    assert await redeem_enrolment_code(prod.app[ENGINE], code, later) is None
    assert await redeem_enrolment_code(prod.app[ENGINE], code, datetime.now(UTC)) is not None

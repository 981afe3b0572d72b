"""Login guessing is throttled, locked with back-off and audited; Argon2 runs off the event
loop; sessions end on logout, deactivation or a role change, and their websockets close
(issue 16, items 2 and 9)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis.asyncio as aioredis
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from core import keys, records
from core.credentials import check_password
from signaling import accounts, password_checks
from signaling.appkeys import SETTINGS
from signaling.login_guard import Failures, Limits, after_failure, wait_s
from signaling.password_checks import PasswordChecks
from signaling.terminal_enrolment import revoke_terminal
from testkit.clock import JumpClock
from testkit.demo import DEMO_PASSWORD
from tests.security.conftest import browser, staff, terminal


def test_failures_lock_with_a_back_off_that_doubles() -> None:
    limits = Limits(failures=3, window_s=900, lock_s=60)
    f = Failures()
    for _ in range(2):
        f = after_failure(f, 1000.0, limits)
    assert wait_s(f, 1000.0) == 0
    f = after_failure(f, 1000.0, limits)
    assert wait_s(f, 1000.0) == 60 and wait_s(f, 1061.0) == 0
    for _ in range(3):
        f = after_failure(f, 1100.0, limits)
    assert wait_s(f, 1100.0) == 120  # the second lock lasts twice as long
    slow = Failures()
    for t in (0.0, 1000.0, 2000.0):  # one failure per window never locks
        slow = after_failure(slow, t, limits)
    assert wait_s(slow, 2000.0) == 0


async def _login(s: object, username: str, password: str) -> int:
    resp = await s.post("/api/login", json={"username": username, "password": password})  # type: ignore[attr-defined]
    return int(resp.status)


async def test_an_account_locks_after_failures_even_for_the_right_password(
        server: TestServer, clock: JumpClock) -> None:
    async with browser(server) as s:
        for _ in range(5):
            assert await _login(s, "clerk2", "wrong-guess") == 401
        resp = await s.post("/api/login", json={"username": "clerk2", "password": DEMO_PASSWORD})
        assert resp.status == 429 and (await resp.json())["error"]["code"] == "locked"
        assert int(resp.headers["Retry-After"]) >= 59
        clock.jump(61)
        assert await _login(s, "clerk2", DEMO_PASSWORD) == 200
    engine = records.make_engine(server.app[SETTINGS].database_url)
    async with engine.connect() as conn:
        failed = (await conn.execute(select(records.audit_log.c.subject).where(
            records.audit_log.c.action == "login.failed"))).scalars().all()
    await engine.dispose()
    assert failed.count("clerk2") >= 5  # every failure is in the audit log


async def test_an_address_guessing_many_accounts_is_locked(server: TestServer) -> None:
    async with browser(server) as s:
        for i in range(20):
            assert await _login(s, f"nobody{i}", "guess") == 401
        assert await _login(s, "clerk1", DEMO_PASSWORD) == 429


async def test_password_checks_run_in_threads_not_on_the_event_loop(
        monkeypatch: pytest.MonkeyPatch, server: TestServer) -> None:
    seen: list[int] = []

    def spy(password_hash: str, password: str) -> bool:
        seen.append(threading.get_ident())
        return check_password(password_hash, password)

    monkeypatch.setattr(password_checks, "check_password", spy)
    loop_thread = threading.get_ident()
    async with browser(server) as s:
        results = await asyncio.gather(*[_login(s, "qa1", p) for p in
                                         (DEMO_PASSWORD, "bad", "alsobad")])
    assert sorted(results) == [200, 401, 401]
    assert len(seen) == 3 and loop_thread not in seen


async def test_a_burst_beyond_the_bound_is_told_busy() -> None:
    checks = PasswordChecks(1)
    checks._waiting = password_checks.MAX_WAITING  # the queue is full
    with pytest.raises(password_checks.PasswordBusy):
        await checks.check("x", "y")


async def _closed_with(ws: object) -> int | None:
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()  # type: ignore[attr-defined]
            if msg.type == WSMsgType.CLOSE:
                return int(msg.data)
            if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return ws.close_code  # type: ignore[attr-defined,no-any-return]


async def test_logout_ends_the_session_and_closes_its_websocket(server: TestServer) -> None:
    s = await staff(server, "clerk1")
    ws = await s.ws_connect("/ws")
    other = await staff(server, "clerk1")  # another browser of the same clerk stays in
    ws2 = await other.ws_connect("/ws")
    assert (await s.post("/api/logout")).status == 200
    assert await _closed_with(ws) == 4401
    assert (await other.get("/api/me")).status == 200 and not ws2.closed
    await ws2.close()
    for c in (s, other):
        await c.close()


async def test_disabling_or_re_roling_an_account_ends_every_session(
        server: TestServer, redis: aioredis.Redis) -> None:
    settings = server.app[SETTINGS]
    engine = records.make_engine(settings.database_url)
    checks = PasswordChecks(1)
    name = "temp-clerk-sec"
    async with engine.begin() as conn:
        await conn.execute(records.accounts.delete().where(records.accounts.c.username == name))
    await accounts.create_account(engine, checks, "admin", accounts.NewAccount(
        username=name, display_name="临时坐席", role="clerk", region_code="420115"),
        "Temp-passw0rd")
    s = browser(server)
    assert await _login(s, name, "Temp-passw0rd") == 200
    ws = await s.ws_connect("/ws")
    await accounts.change_role(engine, redis, "admin", name, "qa")
    assert await _closed_with(ws) == 4401
    assert (await s.get("/api/me")).status == 401
    assert await _login(s, name, "Temp-passw0rd") == 200
    assert (await (await s.get("/api/me")).json())["role"] == "qa"
    await accounts.disable_account(engine, redis, "admin", name)
    assert (await s.get("/api/me")).status == 401
    assert await _login(s, name, "Temp-passw0rd") == 401
    with pytest.raises(accounts.AccountError):
        await accounts.reset_password(engine, redis, checks, "admin", name, "short")
    await s.close()
    await engine.dispose()


async def test_a_revoked_terminal_is_out_at_once(server: TestServer,
                                                 redis: aioredis.Redis) -> None:
    s = await terminal(server, "T-430104-001")
    ws = await s.ws_connect("/ws")
    settings = server.app[SETTINGS]
    engine = records.make_engine(settings.database_url)
    try:
        assert await revoke_terminal(engine, redis, "admin", "T-430104-001") >= 1
        assert await _closed_with(ws) == 4401
        again = await s.post("/api/terminal/session", json={})
        assert again.status == 401  # the device credential no longer works
        assert await redis.scard(keys.sessions_of("terminal:T-430104-001")) == 0
    finally:
        from testkit.demo import seed_demo  # give the demo terminal its token back

        await seed_demo(settings.database_url)
        await engine.dispose()
        await s.close()

"""Who is calling: staff log in with a password, terminals by their device credential.

Sessions live in Redis under `keys.session(id)` with a TTL; the cookie holds only the id
(`signaling.sessions` indexes and ends them). Staff passwords are checked in threads
(`password_checks`), failures are throttled per account and per address with back-off
(`login_guard`) and audited. A terminal enrols once with a one-time code
(`terminal_enrolment`) and keeps its device credential in an HttpOnly cookie scoped to
`/api/terminal`; the old `{"token"}` body is accepted only under `RUN_MODE=local`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys, records
from core.clock import wall
from core.credentials import hash_password, hash_token
from core.replies import http_error
from core.settings import Settings
from signaling import sessions
from signaling.appkeys import CLOCK, ENGINE, REDIS, SETTINGS
from signaling.audit_trail import note
from signaling.login_guard import LoginGuard, client_address, wait_words
from signaling.password_checks import PasswordBusy, PasswordChecks
from signaling.terminal_enrolment import device_terminal, redeem_enrolment_code, rotate_device

log = logging.getLogger("signaling.auth")

COOKIE = "vw_session"
DEVICE_COOKIE = "vw_device"
DEVICE_PATH = "/api/terminal"
DEVICE_MAX_AGE = 5 * 365 * 86400
SessionRole = Literal["clerk", "reviewer", "qa", "admin", "terminal", "supervisor"]
# Verifying against a dummy hash keeps the reply time the same for unknown usernames.
_DUMMY_HASH = hash_password(secrets.token_hex(8))
PASSWORDS = web.AppKey("passwords", PasswordChecks)


class Session(BaseModel):
    """A logged-in staff member or an authenticated terminal."""

    kind: Literal["staff", "terminal"]
    who: str  # username or terminal id
    role: SessionRole
    display_name: str
    region_code: str
    skills: list[str] = Field(default_factory=list)
    jurisdictions: list[str] = Field(default_factory=list)
    review_groups: list[str] = Field(default_factory=list)
    village: str = ""
    handling_regions: list[str] = Field(default_factory=list)  # terminals: besides its own
    priority_allowed: bool = True

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.who}"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TerminalLoginRequest(BaseModel):
    token: str | None = Field(default=None, min_length=8, max_length=256)


class EnrolRequest(BaseModel):
    code: str = Field(min_length=4, max_length=64)


def staff_session(row: Any) -> Session:
    return Session(kind="staff", who=row["username"], role=row["role"],
                   display_name=row["display_name"], region_code=row["region_code"],
                   skills=list(row["skills"]), jurisdictions=list(row["jurisdictions"]),
                   review_groups=list(row["review_groups"]))


def terminal_session(row: Any) -> Session:
    return Session(kind="terminal", who=row["terminal_id"], role="terminal",
                   display_name=row["name"], region_code=row["region_code"],
                   village=row["village"], handling_regions=list(row["handling_regions"]),
                   priority_allowed=bool(row["priority_allowed"]))


async def find_staff(engine: AsyncEngine, passwords: PasswordChecks, username: str,
                     password: str) -> Session | None:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(records.accounts).where(records.accounts.c.username == username,
                                           records.accounts.c.active)
        )).mappings().first()
    if row is None:
        await passwords.check(_DUMMY_HASH, password)
        return None
    if not await passwords.check(row["password_hash"], password):
        return None
    return staff_session(row)


async def find_terminal(engine: AsyncEngine, token: str) -> Session | None:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(records.terminals).where(records.terminals.c.token_hash == hash_token(token),
                                            records.terminals.c.active)
        )).mappings().first()
    return None if row is None else terminal_session(row)


async def open_session(redis: aioredis.Redis, settings: Settings, session: Session) -> str:
    sid = secrets.token_urlsafe(32)
    await redis.set(keys.session(sid), session.model_dump_json(), ex=settings.session_ttl_s)
    await sessions.index(redis, session.principal, sid, settings.session_ttl_s)
    return sid


def session_id(request: web.Request) -> str | None:
    sid = request.cookies.get(COOKIE)
    return sid if sid and len(sid) <= 128 else None


async def current_session(request: web.Request) -> Session | None:
    sid = session_id(request)
    if sid is None:
        return None
    raw = await request.app[REDIS].get(keys.session(sid))
    if raw is None:
        return None
    try:
        return Session.model_validate_json(raw)
    except ValidationError:
        return None


async def require_session(request: web.Request, *roles: SessionRole) -> Session:
    """The caller's session, or 401 (not logged in) / 403 (role not allowed)."""
    session = await current_session(request)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "not_logged_in", "请先登录")
    if roles and session.role not in roles:
        raise http_error(web.HTTPForbidden, "forbidden", "您没有权限进行此操作")
    return session


def _set_cookie(resp: web.Response, settings: Settings, sid: str) -> None:
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=settings.cookie_secure,
                    max_age=settings.session_ttl_s, path="/")


def _set_device_cookie(resp: web.Response, settings: Settings, secret: str) -> None:
    resp.set_cookie(DEVICE_COOKIE, secret, httponly=True, samesite="Strict",
                    secure=settings.cookie_secure, max_age=DEVICE_MAX_AGE, path=DEVICE_PATH)


async def _body(request: web.Request, model: type[Any]) -> Any:
    try:
        raw = await request.read()
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "请求格式不正确") from exc


def _now(request: web.Request) -> float:
    return request.app[CLOCK]()


def _guard(request: web.Request) -> LoginGuard:
    return LoginGuard(request.app[REDIS], request.app[SETTINGS])


def passwords_of(app: web.Application) -> PasswordChecks:
    return app[PASSWORDS]


def _locked(seconds: float) -> web.HTTPError:
    exc = http_error(web.HTTPTooManyRequests, "locked",
                     f"尝试次数太多，已暂时锁定，请 {wait_words(seconds)}后再试")
    exc.headers["Retry-After"] = str(int(seconds) + 1)
    return exc


async def login(request: web.Request) -> web.Response:
    body: LoginRequest = await _body(request, LoginRequest)
    settings, engine = request.app[SETTINGS], request.app[ENGINE]
    guard, now = _guard(request), _now(request)
    address = client_address(request, settings.trusted_proxies)
    account, place = f"account:{body.username}", f"address:{address}"
    wait = await guard.blocked([account, place], now)
    if wait > 0:
        log.info("login refused while locked", extra={"address": address})
        raise _locked(wait)
    try:
        session = await find_staff(engine, passwords_of(request.app), body.username,
                                   body.password)
    except PasswordBusy as exc:
        raise http_error(web.HTTPServiceUnavailable, "busy",
                         "登录的人太多，请稍等几秒再试") from exc
    if session is None:
        acc = await guard.failed(account, now, guard.account)
        adr = await guard.failed(place, now, guard.address)
        await note(engine, f"address:{address}", "login.failed", body.username,
                   {"locked": acc.locked_until > now or adr.locked_until > now})
        log.info("login failed", extra={"address": address})
        raise http_error(web.HTTPUnauthorized, "bad_credentials", "用户名或密码不正确")
    await guard.succeeded(account)
    await note(engine, session.who, "login", session.who, {"address": address})
    sid = await open_session(request.app[REDIS], settings, session)
    resp = web.json_response(session.model_dump(include={"who", "role", "display_name"}))
    _set_cookie(resp, settings, sid)
    return resp


async def terminal_login(request: web.Request) -> web.Response:
    """A kiosk opens a session with its device cookie (or, locally, the demo token)."""
    body: TerminalLoginRequest = await _body(request, TerminalLoginRequest)
    settings, engine = request.app[SETTINGS], request.app[ENGINE]
    guard, now = _guard(request), _now(request)
    address = client_address(request, settings.trusted_proxies)
    place = f"address:{address}"
    if body.token is not None and settings.run_mode != "local":
        raise http_error(web.HTTPForbidden, "enrol_required",
                         "请用登记码登记本终端（旧的令牌网址已停用）")
    secret = body.token or request.cookies.get(DEVICE_COOKIE, "")
    wait = await guard.blocked([place], now)
    if wait > 0:
        raise _locked(wait)
    row = await device_terminal(engine, secret) if 8 <= len(secret) <= 256 else None
    if row is None:
        if secret:  # a wrong credential counts; a kiosk not enrolled yet does not
            await guard.failed(place, now, guard.address)
        raise http_error(web.HTTPUnauthorized, "bad_token", "终端未登记或设备凭证无效")
    rotated = await rotate_device(engine, row["terminal_id"], secret) \
        if row["rotate_pending"] and body.token is None else None
    # The local demo token becomes the device cookie too, so a reload needs no URL token.
    return await _terminal_reply(request, terminal_session(row), rotated or body.token)


async def _terminal_reply(request: web.Request, session: Session,
                          device_secret: str | None) -> web.Response:
    settings = request.app[SETTINGS]
    sid = await open_session(request.app[REDIS], settings, session)
    resp = web.json_response(session.model_dump(include={"who", "role", "display_name",
                                                         "village", "region_code"}))
    _set_cookie(resp, settings, sid)
    if device_secret is not None:
        _set_device_cookie(resp, settings, device_secret)
    return resp


async def enrol(request: web.Request) -> web.Response:
    """The one-time code typed or scanned at the kiosk: a device credential in return."""
    body: EnrolRequest = await _body(request, EnrolRequest)
    settings, engine = request.app[SETTINGS], request.app[ENGINE]
    guard, now = _guard(request), _now(request)
    address = client_address(request, settings.trusted_proxies)
    place = f"enrol:{address}"
    wait = await guard.blocked([place], now)
    if wait > 0:
        raise _locked(wait)
    got = await redeem_enrolment_code(engine, body.code, datetime.fromtimestamp(now, UTC))
    if got is None:
        await guard.failed(place, now, guard.account)
        await note(engine, f"address:{address}", "terminal.enrol_failed", "")
        raise http_error(web.HTTPUnauthorized, "bad_code",
                         "登记码不对或已过期，请找管理员要新的登记码")
    _, secret = got
    row = await device_terminal(engine, secret)
    assert row is not None
    return await _terminal_reply(request, terminal_session(row), secret)


async def logout(request: web.Request) -> web.Response:
    sid = session_id(request)
    session = await current_session(request)
    if sid:
        await sessions.end(request.app[REDIS], [sid], session.principal if session else "")
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def me(request: web.Request) -> web.Response:
    session = await require_session(request)
    return web.json_response(session.model_dump())


def setup_routes(app: web.Application) -> None:
    if CLOCK not in app:
        app[CLOCK] = wall
    app[PASSWORDS] = PasswordChecks(app[SETTINGS].login_hash_concurrency)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_post("/api/terminal/session", terminal_login)
    app.router.add_post("/api/terminal/enrol", enrol)
    app.router.add_get("/api/me", me)

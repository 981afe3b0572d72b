"""Who is calling: staff login with a session cookie, terminals by device token.

Sessions live in Redis under `keys.session(id)` with a TTL; the cookie holds only the id.
"""

from __future__ import annotations

import secrets
from typing import Literal

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys, records
from core.credentials import check_password, hash_password, hash_token
from core.replies import http_error
from core.settings import Settings
from signaling.appkeys import ENGINE, REDIS, SETTINGS

COOKIE = "vw_session"
SessionRole = Literal["clerk", "reviewer", "qa", "admin", "terminal"]
# Verifying against a dummy hash keeps the reply time the same for unknown usernames.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


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


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TerminalLoginRequest(BaseModel):
    token: str = Field(min_length=8, max_length=256)


async def find_staff(engine: AsyncEngine, username: str, password: str) -> Session | None:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(records.accounts).where(records.accounts.c.username == username,
                                           records.accounts.c.active)
        )).mappings().first()
    if row is None:
        check_password(_DUMMY_HASH, password)
        return None
    if not check_password(row["password_hash"], password):
        return None
    return Session(kind="staff", who=row["username"], role=row["role"],
                   display_name=row["display_name"], region_code=row["region_code"],
                   skills=list(row["skills"]), jurisdictions=list(row["jurisdictions"]),
                   review_groups=list(row["review_groups"]))


async def find_terminal(engine: AsyncEngine, token: str) -> Session | None:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(records.terminals).where(records.terminals.c.token_hash == hash_token(token),
                                            records.terminals.c.active)
        )).mappings().first()
    if row is None:
        return None
    return Session(kind="terminal", who=row["terminal_id"], role="terminal",
                   display_name=row["name"], region_code=row["region_code"],
                   village=row["village"])


async def open_session(redis: aioredis.Redis, settings: Settings, session: Session) -> str:
    sid = secrets.token_urlsafe(32)
    await redis.set(keys.session(sid), session.model_dump_json(), ex=settings.session_ttl_s)
    return sid


async def current_session(request: web.Request) -> Session | None:
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 128:
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


async def _body(request: web.Request, model: type[LoginRequest] | type[TerminalLoginRequest]
                ) -> LoginRequest | TerminalLoginRequest:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_request", "请求格式不正确") from exc


async def login(request: web.Request) -> web.Response:
    body = await _body(request, LoginRequest)
    assert isinstance(body, LoginRequest)
    session = await find_staff(request.app[ENGINE], body.username, body.password)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "bad_credentials", "用户名或密码不正确")
    sid = await open_session(request.app[REDIS], request.app[SETTINGS], session)
    resp = web.json_response(session.model_dump(include={"who", "role", "display_name"}))
    _set_cookie(resp, request.app[SETTINGS], sid)
    return resp


async def terminal_login(request: web.Request) -> web.Response:
    body = await _body(request, TerminalLoginRequest)
    assert isinstance(body, TerminalLoginRequest)
    session = await find_terminal(request.app[ENGINE], body.token)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "bad_token", "终端未登记或设备令牌无效")
    sid = await open_session(request.app[REDIS], request.app[SETTINGS], session)
    resp = web.json_response(session.model_dump(include={"who", "role", "display_name",
                                                         "village", "region_code"}))
    _set_cookie(resp, request.app[SETTINGS], sid)
    return resp


async def logout(request: web.Request) -> web.Response:
    sid = request.cookies.get(COOKIE)
    if sid:
        await request.app[REDIS].delete(keys.session(sid))
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def me(request: web.Request) -> web.Response:
    session = await require_session(request)
    return web.json_response(session.model_dump())


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_post("/api/terminal/session", terminal_login)
    app.router.add_get("/api/me", me)

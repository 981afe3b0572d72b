"""Administration (`/admin/`, admins only): accounts, terminals, the service catalogue,
holidays and 调休 days. Every change is audited with its before and after.

The changes are plain functions over the engine (`python -m signaling.admin` calls the
same ones); the routes validate bodies and call them. Accounts and terminals reuse
`signaling.accounts` and `signaling.terminal_enrolment` (which end sessions and note
their own entries); the entry written here carries the row before and after (never a
password or credential digest). A catalogue change reloads this node's catalogue at once;
the others reload it within `CATALOGUE_RELOAD_S` (signaling.supervisor's loop). Holidays
likewise reach the due times every node computes (`signaling.work_calendar`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core import audit, records
from core.catalogue import ItemMaterial
from core.ops_tables import calendar_days
from core.replies import http_error
from signaling import accounts, sessions, terminal_enrolment
from signaling.appkeys import CLOCK, ENGINE, REDIS
from signaling.auth import passwords_of, require_session
from signaling.case_http import body, jsonable
from signaling.node import NODE
from signaling.supervisor import refresh_calendar

SECRET_COLUMNS = {"password_hash", "token_hash", "enrol_code_hash", "staff_pin_hash"}
a, t, items = records.accounts, records.terminals, records.service_items


class AccountBody(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(min_length=1, max_length=128)
    role: Literal["clerk", "reviewer", "qa", "admin", "supervisor"]
    password: str = Field(min_length=1, max_length=256)
    region_code: str = Field(default="", max_length=12)
    skills: list[str] = Field(default_factory=list, max_length=200)
    jurisdictions: list[str] = Field(default_factory=list, max_length=50)
    review_groups: list[str] = Field(default_factory=list, max_length=50)


class AccountChange(BaseModel):
    """One change to an account; the fields it needs depend on `action`."""

    action: Literal["disable", "enable", "password", "role", "scope"]
    password: str | None = Field(default=None, max_length=256)
    role: Literal["clerk", "reviewer", "qa", "admin", "supervisor"] | None = None
    display_name: str | None = Field(default=None, max_length=128)
    region_code: str | None = Field(default=None, max_length=12)
    skills: list[str] | None = Field(default=None, max_length=200)
    jurisdictions: list[str] | None = Field(default=None, max_length=50)
    review_groups: list[str] | None = Field(default=None, max_length=50)


class TerminalBody(BaseModel):
    terminal_id: str = Field(pattern=r"^[A-Za-z0-9_-]{2,64}$")
    name: str = Field(min_length=1, max_length=128)
    village: str = Field(min_length=1, max_length=128)
    region_code: str = Field(min_length=2, max_length=12)
    handling_regions: list[str] = Field(default_factory=list, max_length=20)


class TerminalChange(BaseModel):
    action: Literal["code", "rename", "rotate", "revoke"]
    name: str | None = Field(default=None, max_length=128)
    village: str | None = Field(default=None, max_length=128)


class ItemChange(BaseModel):
    """The editable fields of a service item (absent ones stay)."""

    name: str | None = Field(default=None, min_length=1, max_length=128)
    plain_name: str | None = Field(default=None, min_length=1, max_length=128)
    synonyms: list[str] | None = Field(default=None, max_length=50)
    category: str | None = Field(default=None, min_length=1, max_length=32)
    materials: list[ItemMaterial] | None = Field(default=None, max_length=50)
    workflow: dict[str, Any] | None = None
    time_limit_days: int | None = Field(default=None, ge=1, le=365)
    guide: dict[str, Any] | None = None  # 办事指南: {"steps": [...], "fees": "", "notes": ""}
    active: bool | None = None


class CalendarBody(BaseModel):
    day: date
    kind: Literal["holiday", "makeup"]
    name: str = Field(default="", max_length=64)


def _clean(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    out: dict[str, Any] = jsonable({k: v for k, v in dict(row).items()
                                    if k not in SECRET_COLUMNS})
    return out


async def _row(engine: AsyncEngine, table: Any, key: Any, value: object
               ) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        return _clean((await conn.execute(select(table).where(key == value))).mappings().first())


async def audited(engine: AsyncEngine, actor: str, action: str, subject: str,
                  before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    async with engine.begin() as conn:
        await audit.append(conn, actor, action, subject, before, after, datetime.now(UTC))


# --- the changes (shared with the CLI) ---------------------------------------------------


async def change_account(engine: AsyncEngine, redis: aioredis.Redis,
                         passwords: Any, actor: str, username: str, ch: AccountChange) -> None:
    before = await _row(engine, a, a.c.username, username)
    if before is None:
        raise accounts.AccountError("没有这个账号")
    if ch.action == "disable":
        await accounts.disable_account(engine, redis, actor, username)
    elif ch.action == "enable":
        await accounts.enable_account(engine, redis, actor, username)
    elif ch.action == "password":
        await accounts.reset_password(engine, redis, passwords, actor, username,
                                      ch.password or "")
    elif ch.action == "role":
        if ch.role is None:
            raise accounts.AccountError("请选择角色")
        await accounts.change_role(engine, redis, actor, username, ch.role,
                                   tuple(ch.review_groups or before["review_groups"]))
    else:
        values = {k: v for k, v in ch.model_dump(include={
            "display_name", "region_code", "skills", "jurisdictions", "review_groups"}).items()
            if v is not None}
        if not values:
            raise accounts.AccountError("没有要修改的内容")
        async with engine.begin() as conn:
            await conn.execute(update(a).where(a.c.username == username).values(**values))
        # What a clerk may take is in the session: it ends, the new one carries the change.
        await sessions.end_all(redis, f"staff:{username}")
    await audited(engine, actor, f"admin.account.{ch.action}", username, before,
                  await _row(engine, a, a.c.username, username))


async def change_terminal(engine: AsyncEngine, redis: aioredis.Redis, actor: str,
                          terminal_id: str, ch: TerminalChange, now: datetime) -> str | None:
    """Returns the new one-time enrolment code for `code`."""
    before = await _row(engine, t, t.c.terminal_id, terminal_id)
    if before is None:
        raise terminal_enrolment.TerminalError("没有这个终端")
    code = None
    if ch.action == "code":
        code = await terminal_enrolment.issue_enrolment_code(engine, actor, terminal_id, now)
    elif ch.action == "rotate":
        await terminal_enrolment.request_rotation(engine, actor, terminal_id)
    elif ch.action == "revoke":
        await terminal_enrolment.revoke_terminal(engine, redis, actor, terminal_id)
    else:
        values = {k: v for k, v in {"name": ch.name, "village": ch.village}.items() if v}
        if not values:
            raise terminal_enrolment.TerminalError("请填写新的名称")
        async with engine.begin() as conn:
            await conn.execute(update(t).where(t.c.terminal_id == terminal_id).values(**values))
    await audited(engine, actor, f"admin.terminal.{ch.action}", terminal_id, before,
                  await _row(engine, t, t.c.terminal_id, terminal_id))
    return code


async def change_item(engine: AsyncEngine, actor: str, code: str, ch: ItemChange) -> None:
    before = await _row(engine, items, items.c.code, code)
    if before is None:
        raise LookupError(code)
    values = ch.model_dump(exclude_none=True)
    if not values:
        return
    async with engine.begin() as conn:
        await conn.execute(update(items).where(items.c.code == code).values(**values))
    await audited(engine, actor, "admin.item.change", code, before,
                  await _row(engine, items, items.c.code, code))


async def set_day(engine: AsyncEngine, actor: str, day: CalendarBody) -> None:
    before = await _row(engine, calendar_days, calendar_days.c.day, day.day)
    row = day.model_dump()
    async with engine.begin() as conn:
        await conn.execute(insert(calendar_days).values(**row).on_conflict_do_update(
            index_elements=["day"], set_={"kind": day.kind, "name": day.name}))
    await audited(engine, actor, "admin.calendar.set", day.day.isoformat(), before,
                  jsonable(row))


async def remove_day(engine: AsyncEngine, actor: str, day: date) -> bool:
    before = await _row(engine, calendar_days, calendar_days.c.day, day)
    if before is None:
        return False
    async with engine.begin() as conn:
        await conn.execute(delete(calendar_days).where(calendar_days.c.day == day))
    await audited(engine, actor, "admin.calendar.remove", day.isoformat(), before, None)
    return True


# --- routes -----------------------------------------------------------------------------


def _refused(exc: Exception) -> web.HTTPException:
    return http_error(web.HTTPBadRequest, "refused", str(exc))


async def list_accounts(request: web.Request) -> web.Response:
    await require_session(request, "admin")
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(a).order_by(a.c.role, a.c.username))).mappings()
        return web.json_response({"accounts": [_clean(r) for r in rows]})


async def create_account(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    req = await body(request, AccountBody)
    engine = request.app[ENGINE]
    try:
        await accounts.create_account(engine, passwords_of(request.app), session.who,
                                      accounts.NewAccount(
                                          req.username, req.display_name, req.role,
                                          req.region_code, tuple(req.skills),
                                          tuple(req.jurisdictions), tuple(req.review_groups)),
                                      req.password)
    except accounts.AccountError as exc:
        raise _refused(exc) from exc
    await audited(engine, session.who, "admin.account.create", req.username, None,
                  await _row(engine, a, a.c.username, req.username))
    return web.json_response({"ok": True}, status=201)


async def post_account(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    req = await body(request, AccountChange)
    try:
        await change_account(request.app[ENGINE], request.app[REDIS], passwords_of(request.app),
                             session.who, request.match_info["username"], req)
    except accounts.AccountError as exc:
        raise _refused(exc) from exc
    return web.json_response({"ok": True})


async def list_terminals(request: web.Request) -> web.Response:
    await require_session(request, "admin")
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(t).order_by(t.c.terminal_id))).mappings()
        out = [_clean(r) for r in rows]
    for row in out:
        if row is not None:
            row["enrol_pending"] = bool(row.get("enrol_expires_at"))
    return web.json_response({"terminals": out})


async def create_terminal(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    req = await body(request, TerminalBody)
    engine = request.app[ENGINE]
    now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    try:
        await terminal_enrolment.register_terminal(engine, session.who, (
            terminal_enrolment.NewTerminal(req.terminal_id, req.name, req.village,
                                           req.region_code, tuple(req.handling_regions))))
        code = await terminal_enrolment.issue_enrolment_code(engine, session.who,
                                                             req.terminal_id, now)
    except terminal_enrolment.TerminalError as exc:
        raise _refused(exc) from exc
    await audited(engine, session.who, "admin.terminal.create", req.terminal_id, None,
                  await _row(engine, t, t.c.terminal_id, req.terminal_id))
    return web.json_response({"ok": True, "code": code}, status=201)


async def post_terminal(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    req = await body(request, TerminalChange)
    now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    try:
        code = await change_terminal(request.app[ENGINE], request.app[REDIS], session.who,
                                     request.match_info["terminal_id"], req, now)
    except terminal_enrolment.TerminalError as exc:
        raise _refused(exc) from exc
    return web.json_response({"ok": True, "code": code})


async def list_items(request: web.Request) -> web.Response:
    await require_session(request, "admin")
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(items).order_by(items.c.code))).mappings()
        return web.json_response({"items": [_clean(r) for r in rows]})


async def post_item(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    req = await body(request, ItemChange)
    engine = request.app[ENGINE]
    try:
        await change_item(engine, session.who, request.match_info["code"], req)
    except LookupError as exc:
        raise http_error(web.HTTPNotFound, "unknown_item", "没有这个事项") from exc
    await request.app[NODE].catalogue.load(engine)
    return web.json_response({"ok": True})


async def list_calendar(request: web.Request) -> web.Response:
    await require_session(request, "admin")
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(calendar_days).order_by(calendar_days.c.day)))
        return web.json_response({"days": [jsonable(dict(r)) for r in rows.mappings()]})


async def post_calendar(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    await set_day(request.app[ENGINE], session.who, await body(request, CalendarBody))
    await refresh_calendar(request.app)
    return web.json_response({"ok": True})


async def delete_calendar(request: web.Request) -> web.Response:
    session = await require_session(request, "admin")
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError as exc:
        raise http_error(web.HTTPNotFound, "no_day", "没有这一天") from exc
    if not await remove_day(request.app[ENGINE], session.who, day):
        raise http_error(web.HTTPNotFound, "no_day", "没有这一天")
    await refresh_calendar(request.app)
    return web.json_response({"ok": True})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/admin/accounts", list_accounts)
    r.add_post("/api/admin/accounts", create_account)
    r.add_post("/api/admin/accounts/{username}", post_account)
    r.add_get("/api/admin/terminals", list_terminals)
    r.add_post("/api/admin/terminals", create_terminal)
    r.add_post("/api/admin/terminals/{terminal_id}", post_terminal)
    r.add_get("/api/admin/items", list_items)
    r.add_post("/api/admin/items/{code}", post_item)
    r.add_get("/api/admin/calendar", list_calendar)
    r.add_post("/api/admin/calendar", post_calendar)
    r.add_post("/api/admin/calendar/{day}/delete", delete_calendar)

"""Staff accounts: create, disable and enable, change the role, reset the password.

No HTTP here: the administration page and `python -m signaling.admin` call these. Every
change is audited and ends the account's sessions (their websockets close), so a disabled
or re-roled person is out at once. `first_admin` creates the very first administrator of a
deployment and refuses once any administrator exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import records
from signaling import sessions
from signaling.audit_trail import note
from signaling.password_checks import PasswordChecks

StaffRole = str  # one of ROLES
ROLES = ("clerk", "reviewer", "qa", "admin", "supervisor")  # supervisor: 0009_ops
MIN_PASSWORD = 10
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
a = records.accounts


class AccountError(ValueError):
    """The account cannot be changed so; the message is for a person (Chinese)."""


@dataclass(frozen=True)
class NewAccount:
    username: str
    display_name: str
    role: StaffRole
    region_code: str = ""
    skills: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    review_groups: tuple[str, ...] = field(default_factory=tuple)


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位")
    if password.isdigit() or password.isalpha():
        raise AccountError("密码须同时包含字母和数字")


def _check(new: NewAccount) -> None:
    if not _USERNAME.match(new.username):
        raise AccountError("用户名只能用字母、数字和 _ . -，2 到 64 位")
    if new.role not in ROLES:
        raise AccountError("角色只能是 clerk、reviewer、qa 或 admin")
    if not new.display_name.strip():
        raise AccountError("请填写姓名")


async def create_account(engine: AsyncEngine, passwords: PasswordChecks, actor: str,
                         new: NewAccount, password: str) -> None:
    _check(new)
    check_password_rule(password)
    pw_hash = await passwords.hash(password)
    async with engine.begin() as conn:
        if (await conn.execute(select(a.c.username).where(a.c.username == new.username))
                ).first() is not None:
            raise AccountError("用户名已存在")
        await conn.execute(a.insert().values(
            username=new.username, display_name=new.display_name, role=new.role,
            password_hash=pw_hash, region_code=new.region_code, skills=list(new.skills),
            jurisdictions=list(new.jurisdictions), review_groups=list(new.review_groups)))
    await note(engine, actor, "account.create", new.username, {"role": new.role})


async def first_admin(engine: AsyncEngine, passwords: PasswordChecks, username: str,
                      display_name: str, password: str) -> None:
    """The deployment's first administrator; refused once any administrator exists."""
    async with engine.connect() as conn:
        admins = await conn.scalar(select(func.count()).select_from(a).where(
            a.c.role == "admin"))
    if admins:
        raise AccountError("已经有管理员账号：首个管理员只能创建一次")
    await create_account(engine, passwords, "first-admin", NewAccount(
        username=username, display_name=display_name, role="admin"), password)


async def _change(engine: AsyncEngine, redis: aioredis.Redis, actor: str, username: str,
                  action: str, values: dict[str, object], after: dict[str, object]) -> int:
    async with engine.begin() as conn:
        done = await conn.execute(update(a).where(a.c.username == username).values(**values))
    if done.rowcount != 1:
        raise AccountError("没有这个账号")
    ended = await sessions.end_all(redis, f"staff:{username}")
    await note(engine, actor, action, username, {**after, "sessions_ended": ended})
    return ended


async def disable_account(engine: AsyncEngine, redis: aioredis.Redis, actor: str,
                          username: str) -> int:
    """Out now: the sessions end and the account can no longer log in."""
    if username == actor:
        raise AccountError("不能停用自己的账号")
    return await _change(engine, redis, actor, username, "account.disable",
                         {"active": False}, {})


async def enable_account(engine: AsyncEngine, redis: aioredis.Redis, actor: str,
                         username: str) -> int:
    return await _change(engine, redis, actor, username, "account.enable", {"active": True}, {})


async def change_role(engine: AsyncEngine, redis: aioredis.Redis, actor: str, username: str,
                      role: StaffRole, review_groups: tuple[str, ...] = ()) -> int:
    """A new role (and review groups): the old sessions, with the old rights, end."""
    if role not in ROLES:
        raise AccountError("角色只能是 clerk、reviewer、qa 或 admin")
    return await _change(engine, redis, actor, username, "account.role",
                         {"role": role, "review_groups": list(review_groups)},
                         {"role": role, "review_groups": list(review_groups)})


async def reset_password(engine: AsyncEngine, redis: aioredis.Redis,
                         passwords: PasswordChecks, actor: str, username: str,
                         password: str) -> int:
    check_password_rule(password)
    pw_hash = await passwords.hash(password)
    return await _change(engine, redis, actor, username, "account.password",
                         {"password_hash": pw_hash}, {})

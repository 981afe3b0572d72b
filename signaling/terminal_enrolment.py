"""Terminals: registered by an administrator, enrolled once at the kiosk with a one-time
code, then known by a device credential the kiosk holds in an HttpOnly cookie.

No HTTP here (the administration page and `python -m signaling.admin` call these):
`register_terminal`, `issue_enrolment_code`, `redeem_enrolment_code`, `device_terminal`,
`request_rotation` / `rotate_device`, `revoke_terminal`, `set_staff_pin` / `check_staff_pin`.
Codes and device secrets are stored only as SHA-256 digests (they are long and random);
the staff PIN is short, so it is an Argon2id hash, checked off the event loop and throttled.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import records
from core.credentials import hash_token
from signaling import sessions
from signaling.audit_trail import note
from signaling.password_checks import PasswordChecks

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # nothing to mistake: no 0/O, 1/I
CODE_LENGTH = 10
CODE_TTL = timedelta(hours=24)
t = records.terminals


class TerminalError(ValueError):
    """The terminal cannot be changed so; the message is for a person (Chinese)."""


@dataclass(frozen=True)
class NewTerminal:
    terminal_id: str
    name: str
    village: str
    region_code: str
    handling_regions: tuple[str, ...] = ()
    priority_allowed: bool = True


def normal_code(code: str) -> str:
    """A code as typed or scanned: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def _unusable() -> str:
    """A credential digest nobody holds the secret of (not enrolled, or revoked)."""
    return hash_token(secrets.token_urlsafe(32))


async def register_terminal(engine: AsyncEngine, actor: str, new: NewTerminal) -> None:
    async with engine.begin() as conn:
        exists = (await conn.execute(select(t.c.terminal_id).where(
            t.c.terminal_id == new.terminal_id))).first()
        if exists is not None:
            raise TerminalError("终端编号已存在")
        await conn.execute(t.insert().values(
            terminal_id=new.terminal_id, name=new.name, village=new.village,
            region_code=new.region_code, token_hash=_unusable(),
            handling_regions=list(new.handling_regions),
            priority_allowed=new.priority_allowed))
    await note(engine, actor, "terminal.register", new.terminal_id,
               {"name": new.name, "region_code": new.region_code})


async def issue_enrolment_code(engine: AsyncEngine, actor: str, terminal_id: str,
                               now: datetime) -> str:
    """A one-time code (24 h) to type or scan at the kiosk; the current credential stays
    valid until the code is used (then the new device replaces it)."""
    code = new_code()
    async with engine.begin() as conn:
        done = await conn.execute(update(t).where(t.c.terminal_id == terminal_id).values(
            enrol_code_hash=hash_token(normal_code(code)), enrol_expires_at=now + CODE_TTL,
            active=True))
    if done.rowcount != 1:
        raise TerminalError("没有这个终端")
    await note(engine, actor, "terminal.enrolment_code", terminal_id,
               {"expires_at": (now + CODE_TTL).isoformat()})
    return code


async def redeem_enrolment_code(engine: AsyncEngine, code: str,
                                now: datetime) -> tuple[str, str] | None:
    """(terminal id, device secret) for a valid unused code, which is used up at once."""
    normal = normal_code(code)
    if len(normal) != CODE_LENGTH:
        return None
    secret = secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        row = (await conn.execute(update(t).where(
            t.c.enrol_code_hash == hash_token(normal), t.c.enrol_expires_at > now, t.c.active,
        ).values(enrol_code_hash=None, enrol_expires_at=None, rotate_pending=False,
                 token_hash=hash_token(secret)).returning(t.c.terminal_id))).first()
    if row is None:
        return None
    await note(engine, f"terminal:{row[0]}", "terminal.enrolled", str(row[0]))
    return str(row[0]), secret


async def device_terminal(engine: AsyncEngine, secret: str) -> dict[str, Any] | None:
    """The active terminal holding this device credential."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(t).where(t.c.token_hash == hash_token(secret),
                                                  t.c.active))).mappings().first()
    return None if row is None else dict(row)


async def rotate_device(engine: AsyncEngine, terminal_id: str, old_secret: str) -> str | None:
    """A new device credential in place of the old one, if a rotation was asked for."""
    secret = secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        row = (await conn.execute(update(t).where(
            t.c.terminal_id == terminal_id, t.c.token_hash == hash_token(old_secret),
            t.c.rotate_pending).values(token_hash=hash_token(secret), rotate_pending=False)
            .returning(t.c.terminal_id))).first()
    if row is None:
        return None
    await note(engine, f"terminal:{terminal_id}", "terminal.rotated", terminal_id)
    return secret


async def request_rotation(engine: AsyncEngine, actor: str, terminal_id: str) -> None:
    """The kiosk gets a new credential the next time it opens a session."""
    async with engine.begin() as conn:
        done = await conn.execute(update(t).where(t.c.terminal_id == terminal_id).values(
            rotate_pending=True))
    if done.rowcount != 1:
        raise TerminalError("没有这个终端")
    await note(engine, actor, "terminal.rotate", terminal_id)


async def revoke_terminal(engine: AsyncEngine, redis: aioredis.Redis, actor: str,
                          terminal_id: str) -> int:
    """The device credential stops working now and its sessions end (websockets close);
    a new enrolment code brings the terminal back. Returns the sessions ended."""
    async with engine.begin() as conn:
        done = await conn.execute(update(t).where(t.c.terminal_id == terminal_id).values(
            token_hash=_unusable(), enrol_code_hash=None, enrol_expires_at=None,
            rotate_pending=False))
    if done.rowcount != 1:
        raise TerminalError("没有这个终端")
    ended = await sessions.end_all(redis, f"terminal:{terminal_id}")
    await note(engine, actor, "terminal.revoke", terminal_id, {"sessions_ended": ended})
    return ended


async def set_staff_pin(engine: AsyncEngine, passwords: PasswordChecks, actor: str,
                        terminal_id: str, pin: str) -> None:
    """The village staff's PIN, which opens the kiosk's certificate printing."""
    if not (pin.isdigit() and 6 <= len(pin) <= 12):
        raise TerminalError("PIN 须为 6 到 12 位数字")
    pin_hash = await passwords.hash(pin)
    async with engine.begin() as conn:
        done = await conn.execute(update(t).where(t.c.terminal_id == terminal_id).values(
            staff_pin_hash=pin_hash))
    if done.rowcount != 1:
        raise TerminalError("没有这个终端")
    await note(engine, actor, "terminal.staff_pin", terminal_id)


async def check_staff_pin(engine: AsyncEngine, passwords: PasswordChecks, terminal_id: str,
                          pin: str) -> bool:
    async with engine.connect() as conn:
        pin_hash = await conn.scalar(select(t.c.staff_pin_hash).where(
            t.c.terminal_id == terminal_id))
    return bool(pin_hash) and await passwords.check(str(pin_hash), pin)

"""Guessing is throttled: failed attempts per account and per address, locks with back-off.

`after_failure` and `wait_s` are pure (they take `now`); `LoginGuard` keeps the counts in
Redis (`keys.login_guard(scope)`) so every signaling node sees the same lock. A scope is
"account:<username>", "address:<ip>", "enrol:<ip>", "kiosk:<terminal id>". A lock lasts
`lock_s`, doubling with each further lock up to `MAX_LOCK_S`; a success clears an account's
count (never an address's, or one good account would unlock guessing at the others).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from core import keys
from core.redis_text import str_map
from core.settings import Settings

MAX_LOCK_S = 3600.0
REMEMBER_S = 24 * 3600  # back-off is remembered this long after the last failure


@dataclass(frozen=True)
class Failures:
    count: int = 0  # in the current window
    first_at: float = 0.0
    locks: int = 0  # locks so far: the back-off exponent
    locked_until: float = 0.0

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Failures:
        return cls(int(h.get("count", 0)), float(h.get("first_at", 0)), int(h.get("locks", 0)),
                   float(h.get("locked_until", 0)))

    def to_hash(self) -> dict[str, str]:
        return {"count": str(self.count), "first_at": repr(self.first_at),
                "locks": str(self.locks), "locked_until": repr(self.locked_until)}


@dataclass(frozen=True)
class Limits:
    failures: int  # in a window before a lock
    window_s: float
    lock_s: float


def wait_s(f: Failures, now: float) -> float:
    """Seconds the scope stays locked (0: it may try)."""
    return max(0.0, f.locked_until - now)


def after_failure(f: Failures, now: float, limits: Limits) -> Failures:
    """The counts after one more failure; reaching the limit locks, longer each time."""
    if now - f.first_at > limits.window_s:
        f = Failures(0, now, f.locks, f.locked_until)
    count = f.count + 1
    if count < limits.failures:
        return Failures(count, f.first_at or now, f.locks, f.locked_until)
    lock = min(MAX_LOCK_S, limits.lock_s * 2 ** f.locks)
    return Failures(0, now, f.locks + 1, now + lock)


def client_address(request: web.Request, trusted: tuple[str, ...]) -> str:
    """The caller's address; `X-Forwarded-For` only when the proxy itself is trusted."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if not forwarded:
        return remote
    try:
        peer = ipaddress.ip_address(remote)
        if any(peer in ipaddress.ip_network(n, strict=False) for n in trusted):
            return forwarded.split(",")[-1].strip()[:64] or remote
    except ValueError:
        pass
    return remote


class LoginGuard:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        window, lock = settings.login_window_s, settings.login_lock_s
        self.account = Limits(settings.login_account_failures, window, lock)
        self.address = Limits(settings.login_address_failures, window, lock)

    async def _read(self, scope: str) -> Failures:
        return Failures.from_hash(str_map(await self.redis.hgetall(keys.login_guard(scope))))

    async def blocked(self, scopes: list[str], now: float) -> float:
        """Seconds until every given scope may try again (0: go ahead); one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in scopes:
                pipe.hgetall(keys.login_guard(s))
            found = await pipe.execute()
        return max([wait_s(Failures.from_hash(str_map(h)), now) for h in found], default=0.0)

    async def failed(self, scope: str, now: float, limits: Limits) -> Failures:
        f = after_failure(await self._read(scope), now, limits)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.login_guard(scope), mapping=dict(f.to_hash()))  # type: ignore[arg-type]
            pipe.expire(keys.login_guard(scope), REMEMBER_S)
            await pipe.execute()
        return f

    async def succeeded(self, scope: str) -> None:
        await self.redis.delete(keys.login_guard(scope))


def wait_words(seconds: float) -> str:
    """How long to wait, in plain words."""
    minutes = int(seconds // 60) + (1 if seconds % 60 else 0)
    return f"{max(1, minutes)} 分钟"

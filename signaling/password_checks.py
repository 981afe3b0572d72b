"""Argon2id off the event loop: password checks and hashes in threads, bounded.

A burst of logins must not stall the node: at most `concurrency` checks run at once (in
the default thread pool), at most `MAX_WAITING` wait for a turn, each for at most
`WAIT_S`; beyond that the caller is told the service is busy.
"""

from __future__ import annotations

import asyncio

from core.credentials import check_password, hash_password

MAX_WAITING = 64
WAIT_S = 5.0


class PasswordBusy(RuntimeError):
    """Too many password checks at once on this node."""


class PasswordChecks:
    def __init__(self, concurrency: int) -> None:
        self._turns = asyncio.Semaphore(max(1, concurrency))
        self._waiting = 0

    async def _run(self, fn: object, *args: str) -> object:
        if self._waiting >= MAX_WAITING:
            raise PasswordBusy("too many password checks waiting")
        self._waiting += 1
        try:
            async with asyncio.timeout(WAIT_S):
                await self._turns.acquire()
        except TimeoutError as exc:
            raise PasswordBusy("no turn for a password check in time") from exc
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]
        finally:
            self._turns.release()

    async def check(self, password_hash: str, password: str) -> bool:
        return bool(await self._run(check_password, password_hash, password))

    async def hash(self, password: str) -> str:
        return str(await self._run(hash_password, password))

"""The websockets connected to this signaling node, each with a bounded outbox."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from aiohttp import web
from pydantic import BaseModel

from core.fanout import encode

log = logging.getLogger("signaling.connections")

OUTBOX_LIMIT = 256  # messages queued for one slow client before it is disconnected


class Connection:
    """One client websocket with a bounded outbox. A writer task drains it while there is
    something to send and ends when it is empty, so an idle connection holds no task (less
    memory, and fewer objects for every full garbage collection to walk)."""

    def __init__(self, ws: web.WebSocketResponse, conn_id: str, target: str) -> None:
        self.ws = ws
        self.conn_id = conn_id
        self.target = target
        self._outbox: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._failed = False

    def send(self, text: str) -> None:
        if self._failed:
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            log.warning("outbox full, closing slow client",
                        extra={"target": self.target, "conn": self.conn_id})
            self._failed = True
            self._outbox.clear()
            asyncio.get_running_loop().create_task(self.ws.close(code=1013, message=b"too slow"))
            return
        self._outbox.append(text)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    def send_model(self, message: BaseModel) -> None:
        self.send(encode(message))

    async def _drain(self) -> None:
        try:
            while self._outbox and not self._failed:
                text = self._outbox.popleft()
                if self.ws.closed:
                    self._failed = True
                    return
                try:
                    async with asyncio.timeout(10):
                        await self.ws.send_str(text)
                except (ConnectionError, TimeoutError, RuntimeError) as exc:
                    log.info("send failed, dropping connection",
                             extra={"target": self.target, "error": repr(exc)})
                    self._failed = True
                    return
        finally:
            self._writer = None

    async def flush(self, timeout_s: float) -> None:
        """Until the outbox is sent (bounded): what was queued goes out before a close."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait({writer}, timeout=timeout_s)

    async def stop(self) -> None:
        self._failed = True
        self._outbox.clear()
        writer = self._writer
        if writer is not None:
            writer.cancel()
            # A send stuck on a half-closed socket must not hold the cleanup forever.
            await asyncio.wait({writer}, timeout=1.0)


class Connections:
    """The websockets connected to this node, by target."""

    def __init__(self) -> None:
        self._by_target: dict[str, dict[str, Connection]] = {}

    def add(self, conn: Connection) -> None:
        self._by_target.setdefault(conn.target, {})[conn.conn_id] = conn

    def remove(self, conn: Connection) -> None:
        conns = self._by_target.get(conn.target)
        if conns is not None:
            conns.pop(conn.conn_id, None)
            if not conns:
                del self._by_target[conn.target]

    def of(self, target: str) -> list[Connection]:
        return list(self._by_target.get(target, {}).values())

    def all(self) -> list[Connection]:
        return [c for conns in self._by_target.values() for c in conns.values()]

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_target.values())

"""Delivery of server messages to the clients connected to any signaling node.

Each node keeps its own connections; a message for a target ("clerk:<username>",
"terminal:<id>") goes out on one Redis pub/sub channel and every node delivers it to
the matching local connections. Pub/sub is lossy by design: whatever a client must not
miss is also state in Redis, sent again as a snapshot when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel

from core import keys

log = logging.getLogger("signaling.fanout")

# A published payload is "<target>\n<message json>"; node events use this target. A node
# that already delivered a message to its own connections prefixes "@<node id>\n" so that
# its listener skips it.
EVENT = "!event"
ORIGIN = "@"
OUTBOX_LIMIT = 256  # messages queued for one slow client before it is disconnected


def clerk_target(username: str) -> str:
    return f"clerk:{username}"


def terminal_target(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


def encode(message: BaseModel) -> str:
    return message.model_dump_json()


def payload(target: str, text: str, origin: str = "") -> str:
    return f"{ORIGIN}{origin}\n{target}\n{text}" if origin else f"{target}\n{text}"


def parse(data: str) -> tuple[str, str, str]:
    """(origin node or '', target, text) of a published payload."""
    origin = ""
    if data.startswith(ORIGIN):
        head, _, data = data.partition("\n")
        origin = head[len(ORIGIN):]
    target, _, text = data.partition("\n")
    return origin, target, text


async def publish(redis: aioredis.Redis, target: str, message: BaseModel) -> None:
    """Send `message` to every connection of `target`, on whichever node it is."""
    await redis.publish(keys.events_channel(), payload(target, encode(message)))


async def publish_event(redis: aioredis.Redis, kind: str, **data: Any) -> None:
    """A node-to-node event (e.g. a queue changed) rather than a client message."""
    await redis.publish(keys.events_channel(), f"{EVENT}\n{json.dumps({'event': kind, **data})}")


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

    def targets(self, prefix: str) -> Iterator[str]:
        return (t for t in list(self._by_target) if t.startswith(prefix))

    def all(self) -> list[Connection]:
        return [c for conns in self._by_target.values() for c in conns.values()]

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_target.values())

"""Delivery of server messages to clients on any signaling node, and the node's listener.

A message for a target goes to this node's connections of it at once; the same payload
is published (`core.fanout`) for the other nodes, marked with this node's origin so its
own listener skips it. Node events (a queue changed) travel the same channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError

from core import fanout, keys
from core.fanout import clerk_target, terminal_target
from core.loops import raise_if_cancelling
from signaling.connections import Connections

log = logging.getLogger("signaling.delivery")

EventHandler = Callable[[dict[str, str]], None]
RESUBSCRIBE_MIN_S, RESUBSCRIBE_MAX_S = 0.1, 0.5


class Delivery:
    def __init__(self, redis: aioredis.Redis, node_id: str) -> None:
        self.redis = redis
        self.conns = Connections()
        # Unique per process even if two nodes share a node id.
        self.origin = f"{node_id}.{secrets.token_hex(4)}"

    def here(self, target: str, *messages: BaseModel) -> list[str]:
        """Send to this node's connections of `target` now; the payloads to publish for
        the other nodes (which deliver to theirs) are returned."""
        texts = [fanout.encode(m) for m in messages]
        local = self.conns.of(target)
        for conn in local:
            for text in texts:
                conn.send(text)
        origin = self.origin if local else ""
        return [fanout.payload(target, text, origin) for text in texts]

    def event(self, kind: str, **data: str) -> str:
        """The payload of a node event, from this node (its own listener skips it)."""
        return fanout.event_payload(kind, data, self.origin)

    async def publish(self, payloads: Sequence[str]) -> None:
        """Publish on the events channel, several in one round trip."""
        if len(payloads) == 1:
            await self.redis.publish(keys.events_channel(), payloads[0])
        elif payloads:
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in payloads:
                    pipe.publish(keys.events_channel(), p)
                await pipe.execute()

    async def to_clerk(self, username: str, *messages: BaseModel) -> None:
        await self.publish(self.here(clerk_target(username), *messages))

    async def to_terminal(self, terminal_id: str, *messages: BaseModel) -> None:
        await self.publish(self.here(terminal_target(terminal_id), *messages))

    def receive(self, payload: str, on_event: EventHandler) -> None:
        """One payload from the channel: to local connections, or a node event."""
        origin, target, text = fanout.parse(payload)
        if origin == self.origin:
            return  # delivered here when sent
        if target == fanout.EVENT:
            try:
                event = json.loads(text)
            except ValueError:
                log.warning("unreadable node event", extra={"payload": text[:200]})
                return
            on_event(event)
            return
        for conn in self.conns.of(target):
            conn.send(text)

    async def listen(self, on_event: EventHandler,
                     on_resubscribed: Callable[[], Awaitable[None]]) -> None:
        """Deliver what other processes publish, for the life of the node. When Redis goes
        away (a restart), subscribe again as soon as it is back, then `on_resubscribed`:
        whatever was published meanwhile is lost, so local clients get a fresh snapshot."""
        pause, lost = RESUBSCRIBE_MIN_S, False
        while True:
            try:
                await self._listen_once(on_event, on_resubscribed if lost else None)
            except (RedisError, ConnectionError, OSError) as exc:
                log.warning("fan-out listener lost Redis; subscribing again",
                            extra={"error": repr(exc), "in_s": pause})
            lost = True
            raise_if_cancelling()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESUBSCRIBE_MAX_S)

    async def _listen_once(self, on_event: EventHandler,
                           on_subscribed: Callable[[], Awaitable[None]] | None) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.events_channel())
            if on_subscribed is not None:
                log.info("fan-out listener subscribed again; resending snapshots")
                await on_subscribed()
            async for msg in pubsub.listen():
                raise_if_cancelling()
                if msg is not None and msg["type"] == "message":
                    self.receive(str(msg["data"]), on_event)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it

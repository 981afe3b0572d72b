"""The fan-out message format: how any process addresses a client on any signaling node.

Each signaling node keeps its own connections; a message for a target ("clerk:<username>",
"terminal:<id>", "reviewer:<username>") goes out on one Redis pub/sub channel and every
node delivers it to the matching local connections. Pub/sub is lossy by design: whatever
a client must not miss is also state in Redis or PostgreSQL, sent again as a snapshot when
it reconnects. Signaling, the approval worker and the media worker publish; only
signaling nodes listen.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from pydantic import BaseModel

from core import keys

# A published payload is "<target>\n<message json>"; node events use this target. A node
# that already delivered a message to its own connections prefixes "@<origin>\n" so that
# its listener skips it.
EVENT = "!event"
ORIGIN = "@"


def clerk_target(username: str) -> str:
    return f"clerk:{username}"


def terminal_target(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


def reviewer_target(username: str) -> str:
    return f"reviewer:{username}"


def encode(message: BaseModel) -> str:
    return message.model_dump_json()


def payload(target: str, text: str, origin: str = "") -> str:
    return f"{ORIGIN}{origin}\n{target}\n{text}" if origin else f"{target}\n{text}"


def event_payload(kind: str, data: dict[str, str], origin: str = "") -> str:
    """A node-to-node event (e.g. a queue changed) rather than a client message."""
    return payload(EVENT, json.dumps({"event": kind, **data}), origin)


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

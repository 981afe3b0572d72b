"""Telling a call's participants what the worker found, on whichever signaling node they are.

The worker publishes through `core.fanout` to the participants' targets (the terminal by
its id, clerks by their usernames); signaling nodes deliver to their sockets. Lossy like
every fan-out message: what a page must not miss is also kept (in PostgreSQL) and read
again when it reconnects.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from pydantic import BaseModel

from core.fanout import clerk_target, publish, terminal_target

Roles = frozenset[str]
EVERYONE: Roles = frozenset({"terminal", "clerk", "second_clerk"})
CLERKS: Roles = frozenset({"clerk", "second_clerk"})


def target_of(participant_id: str, role: str) -> str:
    return terminal_target(participant_id) if role == "terminal" else clerk_target(participant_id)


async def tell(redis: aioredis.Redis, participants: Iterable[tuple[str, str]],
               message: BaseModel, roles: Roles = EVERYONE) -> None:
    """Publish `message` to each (participant id, role) whose role is in `roles`."""
    for participant_id, role in participants:
        if role in roles:
            await publish(redis, target_of(participant_id, role), message)

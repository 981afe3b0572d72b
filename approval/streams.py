"""Work distribution on Redis Streams: one stream per review group, consumer group "reviewers".

A task is (case, step seq, group). Enqueueing is idempotent (a set of queued task ids
guards the XADD in one script), so PostgreSQL can always be replayed into Redis after a
restart. Work held by a consumer that went away is taken back with XAUTOCLAIM; a task
delivered too often goes to the dead-letter list.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from core import keys

GROUP = "reviewers"
POOL = "pool"  # parking consumer for reclaimed work nobody holds yet

# SADD guards XADD: a task already queued is never added twice.
_ENQUEUE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return false end
redis.call('SADD', KEYS[3], ARGV[2])
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], 'reviewers', '0', 'MKSTREAM')
return redis.call('XADD', KEYS[1], '*', 'case', ARGV[3], 'seq', ARGV[4], 'group', ARGV[2],
                  'at', ARGV[5])
"""


def task_id(case_no: str, seq: int, group: str) -> str:
    return f"{case_no}:{seq}:{group}"


@dataclass(frozen=True)
class Task:
    message_id: str
    group: str
    case_no: str
    seq: int
    enqueued_at: float  # wall-clock seconds, for the submit → task figure

    @property
    def task_id(self) -> str:
        return task_id(self.case_no, self.seq, self.group)

    @classmethod
    def parse(cls, message_id: str, fields: dict[str, str]) -> Task:
        return cls(message_id, fields["group"], fields["case"], int(fields["seq"]),
                   float(fields["at"]))

    def to_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "group": self.group, "case_no": self.case_no,
                "seq": self.seq}


async def ensure_group(redis: aioredis.Redis, group: str) -> None:
    try:
        await redis.xgroup_create(keys.approval_tasks(group), GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    await redis.sadd(keys.approval_groups(), group)


async def enqueue(redis: aioredis.Redis, case_no: str, seq: int, group: str,
                  now_s: float | None = None) -> bool:
    """Add the task unless it is already queued; True when it was added."""
    at = time.time() if now_s is None else now_s
    added = await redis.eval(_ENQUEUE, 3, keys.approval_tasks(group), keys.approval_queued(),
                             keys.approval_groups(), task_id(case_no, seq, group), group,
                             case_no, str(seq), repr(at))
    return added is not None


async def cancel(redis: aioredis.Redis, case_no: str, seq: int, groups: list[str]) -> None:
    """Tasks no longer wanted: consumers that still get them find them stale and ack."""
    if groups:
        await redis.srem(keys.approval_queued(), *[task_id(case_no, seq, g) for g in groups])


async def unqueue(redis: aioredis.Redis, task_ref: str) -> None:
    """A task decided without being claimed: its holders find it stale and drop it."""
    await redis.srem(keys.approval_queued(), task_ref)


async def is_queued(redis: aioredis.Redis, task: Task) -> bool:
    return bool(await redis.sismember(keys.approval_queued(), task.task_id))


async def groups(redis: aioredis.Redis) -> list[str]:
    return sorted(str(g) for g in await redis.smembers(keys.approval_groups()))


def _tasks(group: str, entries: list[Any]) -> list[Task]:
    # XCLAIM/XAUTOCLAIM report trimmed entries as (id, None); they carry nothing to do.
    return [Task.parse(mid, fields) for mid, fields in entries if fields]


async def read_new(redis: aioredis.Redis, group_names: list[str], consumer: str,
                   count: int = 10, block_ms: int | None = None) -> list[Task]:
    """New tasks from any of the groups' streams, now held by `consumer`."""
    if not group_names:
        return []
    streams: dict[Any, Any] = {keys.approval_tasks(g): ">" for g in group_names}
    try:
        reply: Any = await redis.xreadgroup(GROUP, consumer, streams, count=count,
                                            block=block_ms)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        for g in group_names:  # a Redis that lost its data: recreate and retry next time
            await ensure_group(redis, g)
        return []
    out: list[Task] = []
    for _stream, entries in reply or []:
        out.extend(_tasks("", entries))
    return out


async def reclaim(redis: aioredis.Redis, group: str, consumer: str, min_idle_ms: int,
                  count: int = 50) -> list[Task]:
    """XAUTOCLAIM: tasks idle longer than `min_idle_ms` (their holder went away)."""
    try:
        reply: Any = await redis.xautoclaim(keys.approval_tasks(group), GROUP, consumer,
                                       min_idle_time=min_idle_ms, start_id="0-0", count=count)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return []
    return _tasks(group, reply[1])


async def reclaim_from_departed(redis: aioredis.Redis, group: str, min_idle_ms: int,
                                count: int = 100) -> list[Task]:
    """Idle work of consumers whose presence expired goes back to the pool.

    Unlike XAUTOCLAIM this leaves alone a reviewer who is online and still reading.
    """
    try:
        rows = await redis.xpending_range(keys.approval_tasks(group), GROUP, min="-", max="+",
                                          count=count, idle=min_idle_ms)
    except ResponseError:
        return []
    holders = sorted({str(r["consumer"]) for r in rows} - {POOL})
    if not holders:
        return []
    alive = await redis.mget([keys.reviewer_online(h) for h in holders])
    departed = {h for h, a in zip(holders, alive, strict=True) if a is None}
    ids: list[Any] = [r["message_id"] for r in rows if r["consumer"] in departed]
    if not ids:
        return []
    entries: Any = await redis.xclaim(keys.approval_tasks(group), GROUP, POOL, min_idle_ms, ids)
    return _tasks(group, entries)


async def deliveries(redis: aioredis.Redis, task: Task) -> int:
    """How many times the task was delivered (the consumer group's counter)."""
    rows = await redis.xpending_range(keys.approval_tasks(task.group), GROUP,
                                      min=task.message_id, max=task.message_id, count=1)
    return int(rows[0]["times_delivered"]) if rows else 0


async def ack(redis: aioredis.Redis, task: Task) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(keys.approval_tasks(task.group), GROUP, task.message_id)
        pipe.srem(keys.approval_queued(), task.task_id)
        await pipe.execute()


async def dead_letter(redis: aioredis.Redis, task: Task, reason: str) -> None:
    entry = json.dumps({**task.to_json(), "reason": reason, "at": time.time()},
                       ensure_ascii=False)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(keys.approval_dead(), entry)
        pipe.xack(keys.approval_tasks(task.group), GROUP, task.message_id)
        pipe.srem(keys.approval_queued(), task.task_id)
        pipe.hincrby(keys.approval_figures(), "dead", 1)
        await pipe.execute()


async def held_by(redis: aioredis.Redis, group: str, consumer: str,
                  count: int = 20) -> list[Task]:
    try:
        rows = await redis.xpending_range(keys.approval_tasks(group), GROUP, min="-", max="+",
                                          count=count, consumername=consumer)
    except ResponseError:
        return []
    out: list[Task] = []
    for row in rows:
        entries: Any = await redis.xrange(keys.approval_tasks(group), row["message_id"],
                                     row["message_id"])
        out.extend(_tasks(group, entries))
    return out


async def find(redis: aioredis.Redis, group: str, message_id: str) -> Task | None:
    """The task behind a message id of a group's stream, if it is still there."""
    try:
        entries: Any = await redis.xrange(keys.approval_tasks(group), message_id, message_id)
    except ResponseError:
        return None
    found = _tasks(group, entries)
    return found[0] if found else None


async def transfer(redis: aioredis.Redis, task: Task, consumer: str) -> bool:
    """Give a pending task to `consumer` (random assignment, or a reviewer's claim)."""
    got = await redis.xclaim(keys.approval_tasks(task.group), GROUP, consumer, 0,
                             [task.message_id], justid=True)
    return bool(got)


async def claim(redis: aioredis.Redis, group_names: list[str], reviewer: str) -> Task | None:
    """A reviewer takes the next task of their groups: parked work first, then new work."""
    for g in group_names:
        for task in await held_by(redis, g, POOL, count=1):
            if await transfer(redis, task, reviewer):
                return task
    for g in group_names:
        got = await read_new(redis, [g], reviewer, count=1)
        if got:
            return got[0]
    return None


# --- presence of reviewers --------------------------------------------------------------


async def mark_online(redis: aioredis.Redis, reviewer: str, group_names: list[str],
                      ttl_s: float) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(keys.reviewer_online(reviewer), "1", px=int(ttl_s * 1000))
        for g in group_names:
            pipe.sadd(keys.approval_group_members(g), reviewer)
        await pipe.execute()


async def online_reviewers(redis: aioredis.Redis, group: str) -> list[str]:
    members = sorted(str(m) for m in await redis.smembers(keys.approval_group_members(group)))
    if not members:
        return []
    alive = await redis.mget([keys.reviewer_online(m) for m in members])
    return [m for m, a in zip(members, alive, strict=True) if a is not None]


async def assign_random(redis: aioredis.Redis, group: str, rng: random.Random) -> list[
        tuple[Task, str]]:
    """办件随机分配: new and parked tasks of a group go to random online reviewers."""
    online = await online_reviewers(redis, group)
    if not online:
        return []
    waiting = await read_new(redis, [group], POOL, count=50)
    waiting += [t for t in await held_by(redis, group, POOL, count=50)
                if t.message_id not in {w.message_id for w in waiting}]
    out = []
    for task in waiting:
        reviewer = rng.choice(online)
        if await transfer(redis, task, reviewer):
            out.append((task, reviewer))
    return out

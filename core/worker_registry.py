"""Media workers and the calls placed on them, as Redis records every process shares.

Each worker keeps a hash with a TTL (refreshed by its heartbeat) and its id in a set; an
id in the set without a live hash is a dead worker. Signaling places a call on a worker
by writing the call's placement (worker, names for the watermark, state); the worker
reads it and marks the call ended, pushing an `ended` event when signaling did not ask
for the end. Pure parts take `now`; no aiortc here, so signaling imports this cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from core import keys
from core.redis_text import str_map, strs
from core.states import CallState


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    url: str
    capacity: int
    load: float  # in [0, 1]
    calls: int
    pid: int
    updated_at: float

    def to_hash(self) -> dict[str, str]:
        return {
            "worker_id": self.worker_id, "url": self.url, "capacity": str(self.capacity),
            "load": f"{self.load:.4f}", "calls": str(self.calls), "pid": str(self.pid),
            "updated_at": f"{self.updated_at:.3f}",
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> WorkerInfo:
        return cls(
            worker_id=raw["worker_id"], url=raw["url"], capacity=int(raw["capacity"]),
            load=float(raw["load"]), calls=int(raw["calls"]), pid=int(raw["pid"]),
            updated_at=float(raw["updated_at"]),
        )


def load_figure(calls: int, capacity: int, cpu_fraction: float,
                verification: float = 0.0) -> float:
    """The largest of the call share, the CPU share (the worker's process and its
    verification pool) and the verification queue's share, clamped to [0, 1].

    An idle worker reports 0 whatever its CPU: nothing of its own is using it.
    """
    if calls == 0:
        return 0.0
    share = calls / capacity if capacity > 0 else 1.0
    return max(0.0, min(1.0, max(share, cpu_fraction, verification)))


def pick_worker(workers: Iterable[WorkerInfo], threshold: float) -> WorkerInfo | None:
    """The least-loaded worker at or below the threshold (ties: fewer calls, then id)."""
    fit = [w for w in workers if w.load <= threshold]
    if not fit:
        return None
    return min(fit, key=lambda w: (w.load, w.calls, w.worker_id))


async def register(redis: aioredis.Redis, info: WorkerInfo, ttl_s: float) -> None:
    fields: dict[Any, Any] = info.to_hash()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media_worker(info.worker_id), mapping=fields)
        pipe.pexpire(keys.media_worker(info.worker_id), int(ttl_s * 1000))
        pipe.sadd(keys.media_workers(), info.worker_id)
        await pipe.execute()


async def unregister(redis: aioredis.Redis, worker_id: str) -> None:
    """A worker that stops cleanly leaves the registry at once."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.srem(keys.media_workers(), worker_id)
        pipe.delete(keys.media_worker(worker_id))
        await pipe.execute()


async def live_workers(redis: aioredis.Redis) -> tuple[list[WorkerInfo], list[str]]:
    """(live workers, ids of registered workers whose record expired)."""
    ids = sorted(strs(await redis.smembers(keys.media_workers())))
    live: list[WorkerInfo] = []
    dead: list[str] = []
    for worker_id in ids:
        raw = str_map(await redis.hgetall(keys.media_worker(worker_id)))
        if raw:
            live.append(WorkerInfo.from_hash(raw))
        else:
            dead.append(worker_id)
    return live, dead


async def claim_dead(redis: aioredis.Redis, worker_id: str) -> list[str]:
    """The calls of a dead worker, for the one process that claims it first (else [])."""
    if not await redis.srem(keys.media_workers(), worker_id):
        return []
    call_ids = strs(await redis.smembers(keys.media_worker_calls(worker_id)))
    await redis.delete(keys.media_worker_calls(worker_id))
    return call_ids


# --- calls placed on workers ------------------------------------------------------------


@dataclass(frozen=True)
class PlacedCall:
    """Where a call runs and what its recording's watermark names."""

    call_id: str
    worker_id: str
    worker_url: str
    state: CallState
    terminal_id: str = ""
    terminal_name: str = ""
    clerk_username: str = ""
    clerk_name: str = ""
    case_no: str = ""
    item_code: str = ""
    started_at: float = 0.0
    reason: str = ""

    def to_hash(self) -> dict[str, str]:
        return {k: repr(v) if isinstance(v, float) else str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> PlacedCall:
        return cls(
            call_id=h["call_id"], worker_id=h.get("worker_id", ""),
            worker_url=h.get("worker_url", ""), state=CallState(h.get("state", "active")),
            terminal_id=h.get("terminal_id", ""), terminal_name=h.get("terminal_name", ""),
            clerk_username=h.get("clerk_username", ""), clerk_name=h.get("clerk_name", ""),
            case_no=h.get("case_no", ""), item_code=h.get("item_code", ""),
            started_at=float(h.get("started_at") or 0), reason=h.get("reason", ""))


async def place_call(redis: aioredis.Redis, placed: PlacedCall) -> None:
    fields: dict[Any, Any] = placed.to_hash()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media_call(placed.call_id), mapping=fields)
        pipe.sadd(keys.media_worker_calls(placed.worker_id), placed.call_id)
        await pipe.execute()


async def placed_call(redis: aioredis.Redis, call_id: str) -> PlacedCall | None:
    h = str_map(await redis.hgetall(keys.media_call(call_id)))
    return PlacedCall.from_hash(h) if h.get("call_id") else None


async def set_call_state(redis: aioredis.Redis, call_id: str, state: CallState,
                         reason: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media_call(call_id), mapping={"state": state.value, "reason": reason})
        if state != CallState.ACTIVE:
            pipe.expire(keys.media_call(call_id), keys.ENDED_CALL_TTL_S)
        await pipe.execute()


async def adopt_call(redis: aioredis.Redis, worker_id: str, call_id: str) -> None:
    """The worker hosting a call lists it under itself (a call it was not placed on too)."""
    await redis.sadd(keys.media_worker_calls(worker_id), call_id)


async def call_ended_here(redis: aioredis.Redis, worker_id: str, call_id: str, reason: str,
                          notify: bool) -> None:
    """The worker ended a call; `notify`: signaling did not ask, so it is told."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.media_call(call_id),
                  mapping={"state": CallState.ENDED.value, "reason": reason})
        pipe.expire(keys.media_call(call_id), keys.ENDED_CALL_TTL_S)
        pipe.srem(keys.media_worker_calls(worker_id), call_id)
        if notify:
            pipe.rpush(keys.media_ended(), json.dumps({"call_id": call_id, "reason": reason}))
        await pipe.execute()


async def next_ended(redis: aioredis.Redis) -> tuple[str, str] | None:
    """(call id, reason) of the oldest end a worker reported, taken off the list."""
    raw = await redis.lpop(keys.media_ended())
    if raw is None:
        return None
    event = json.loads(strs([raw])[0])
    return str(event["call_id"]), str(event["reason"])

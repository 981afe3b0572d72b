"""The media worker registry in Redis: what a worker reports and how signaling picks one.

Each worker keeps a hash with a TTL (refreshed by its heartbeat) and its id in a set; an
id in the set without a live hash is a dead worker. Pure parts take `now`; no aiortc here,
so signaling imports this module cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core import keys


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def str_map(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A Redis hash as str → str, whatever the client's decode_responses setting."""
    return {_s(k): _s(v) for k, v in raw.items()}


def strs(raw: Iterable[Any]) -> list[str]:
    return [_s(v) for v in raw]


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


def load_figure(calls: int, capacity: int, cpu_fraction: float) -> float:
    """The larger of the call share and the CPU share, clamped to [0, 1].

    An idle worker reports 0 whatever its CPU: nothing of its own is using it.
    """
    if calls == 0:
        return 0.0
    share = calls / capacity if capacity > 0 else 1.0
    return max(0.0, min(1.0, max(share, cpu_fraction)))


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

"""The approval worker: automated reviewer consumers and the periodic sweep.

The sweep replays PostgreSQL's open tasks into the streams (after a Redis restart),
takes back work held too long by consumers that went away (XAUTOCLAIM), hands new work
to random online reviewers, and runs the deadlines (容缺 expiry, overdue escalation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from approval import effects, streams
from approval import workflow as wf
from approval.messages import ReviewTaskAssigned
from approval.store import CaseNotFound, CaseRefused, CaseStore
from core import keys
from core.fanout import publish, reviewer_target
from core.settings import Settings

log = logging.getLogger("approval.worker")

Processed = Literal["applied", "duplicate", "stale", "dead", "failed"]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def process(redis: aioredis.Redis, store: CaseStore, task: streams.Task, reviewer: str,
                  decision: wf.ReviewDecision, comment: str, base_url: str,
                  max_deliveries: int, timings: dict[str, float] | None = None) -> Processed:
    """Apply one task exactly once; ack only after the decision and its effects are done."""
    spent = {} if timings is None else timings
    t0 = time.perf_counter()
    if not await streams.is_queued(redis, task):
        await streams.ack(redis, task)  # cancelled (或签, rejection, expiry) or already done
        return "stale"
    if await streams.deliveries(redis, task) > max_deliveries:
        await streams.dead_letter(redis, task, f"delivered more than {max_deliveries} times")
        return "dead"
    t1 = time.perf_counter()
    try:
        change = await store.decide(task.case_no, task.seq, task.group, reviewer, decision,
                                    comment, utcnow())
    except (CaseRefused, CaseNotFound) as exc:
        await streams.dead_letter(redis, task, f"{type(exc).__name__}: {exc}")
        return "dead"
    t2 = time.perf_counter()
    if change.applied == "duplicate":
        # The decision committed but the holder died before its effects: replay them.
        await effects.reopen(redis, change.state)
    await effects.carry_out(redis, change, base_url)
    await streams.ack(redis, task)
    t3 = time.perf_counter()
    for phase, took in (("checks", t1 - t0), ("decide_db", t2 - t1), ("effects_ack", t3 - t2)):
        spent[phase] = spent.get(phase, 0.0) + took
    return change.applied


@dataclass
class AutoReviewer:
    """An automated reviewer consumer (approves everything): for the demo and the bench."""

    redis: aioredis.Redis
    store: CaseStore
    name: str
    groups: list[str]
    base_url: str = ""
    reclaim_idle_ms: int = 30_000
    max_deliveries: int = 5
    presence_ttl_s: float = 30.0
    pickup_s: list[float] = field(default_factory=list)  # first step: submit → picked up
    picked_at: list[float] = field(default_factory=list)  # wall-clock time of each pickup
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, summed

    async def run_once(self, block_ms: int = 1000) -> int:
        await streams.mark_online(self.redis, self.name, [], self.presence_ttl_s)  # not a member
        tasks: list[streams.Task] = []
        for g in self.groups:
            tasks += await streams.reclaim(self.redis, g, self.name, self.reclaim_idle_ms)
        if not tasks:
            tasks = await streams.read_new(self.redis, self.groups, self.name, count=10,
                                           block_ms=block_ms)
        now = time.time()
        for task in tasks:
            if task.seq == 1:
                self.pickup_s.append(now - task.enqueued_at)
                self.picked_at.append(now)
            try:
                result: Processed = await process(
                    self.redis, self.store, task, self.name, "approve", "", self.base_url,
                    self.max_deliveries, self.timings)
            except (RedisError, SQLAlchemyError, OSError) as exc:
                log.warning("task %s failed, it will be retried: %s", task.task_id, exc)
                result = "failed"
            self.counts[result] = self.counts.get(result, 0) + 1
        return len(tasks)

    async def run(self, stop: asyncio.Event) -> None:
        for g in self.groups:
            await streams.ensure_group(self.redis, g)
        while not stop.is_set():
            try:
                await self.run_once()
            except (RedisError, OSError) as exc:
                log.warning("redis unavailable (%s); retrying", exc)
                await asyncio.sleep(0.5)


@dataclass
class SweepReport:
    reenqueued: int = 0
    reclaimed: int = 0
    assigned: int = 0
    ticked: int = 0
    archived: int = 0


async def sweep(redis: aioredis.Redis, store: CaseStore, settings: Settings,
                rng: random.Random, now: datetime | None = None) -> SweepReport:
    report = SweepReport()
    for case_no, seq, group in await store.open_tasks():
        report.reenqueued += await streams.enqueue(redis, case_no, seq, group)
    idle_ms = int(settings.approval_reclaim_idle_s * 1000)
    for g in await streams.groups(redis):
        report.reclaimed += len(await streams.reclaim_from_departed(redis, g, idle_ms))
        if settings.approval_assignment == "random":
            for task, reviewer in await streams.assign_random(redis, g, rng):
                report.assigned += 1
                await publish(redis, reviewer_target(reviewer), ReviewTaskAssigned(
                    case_no=task.case_no, group=task.group, seq=task.seq))
    leads = effects.group_leads(settings.approval_group_leads)
    for change in await store.tick(now or utcnow()):
        report.ticked += 1
        await effects.carry_out(redis, change, settings.base_url, leads)
    at = now or utcnow()
    report.archived = len(await store.archive_due(
        at - timedelta(days=settings.approval_archive_after_days)))
    if report.reclaimed:
        await redis.hincrby(keys.approval_figures(), "reclaimed", report.reclaimed)
    return report


async def sweep_forever(redis: aioredis.Redis, store: CaseStore, settings: Settings,
                        stop: asyncio.Event) -> None:
    """One worker at a time sweeps (a short Redis lock), every `approval_sweep_s`."""
    rng = random.Random()
    while not stop.is_set():
        try:
            lock = await redis.set(keys.approval_sweep_lock(), settings.node_id, nx=True,
                                   px=int(settings.approval_sweep_s * 1000))
            if lock:
                await sweep(redis, store, settings, rng)
        except (RedisError, SQLAlchemyError, OSError) as exc:
            log.warning("sweep failed, next round will retry: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.approval_sweep_s)

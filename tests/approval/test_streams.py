"""Work distribution on real Redis: reclaim after a dead consumer, restarts, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from sqlalchemy import func, select

from approval import effects, streams
from approval import workflow as wf
from approval.store import CaseStore
from approval.tables import cases as case_rows
from approval.tables import decisions
from approval.worker import AutoReviewer, sweep_forever, utcnow
from core import keys
from core.settings import ROOT, Settings
from testkit.localstack import RedisServer, free_port
from tests.approval.conftest import submission

TOWN, DISTRICT = "town-civil-affairs", "district-civil-affairs"


async def submit(redis: aioredis.Redis, store: CaseStore, item: str = "DB-SQ") -> str:
    change = await store.create(submission(item), "clerk1", utcnow())
    await effects.carry_out(redis, change, "http://127.0.0.1:8080")
    return change.case_no


async def decisions_per_step(store: CaseStore, case_no: str) -> list[int]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(decisions.c.seq, func.count()).where(
            decisions.c.case_no == case_no).group_by(decisions.c.seq)
            .order_by(decisions.c.seq))).all()
    return [int(n) for _, n in rows]


async def drain(reviewer: AutoReviewer, rounds: int = 20) -> None:
    for _ in range(rounds):
        if not await reviewer.run_once(block_ms=50):
            return


async def test_enqueue_is_idempotent(redis: aioredis.Redis) -> None:
    assert await streams.enqueue(redis, "C1", 1, TOWN)
    assert not await streams.enqueue(redis, "C1", 1, TOWN)
    assert await redis.xlen(keys.approval_tasks(TOWN)) == 1


@pytest.mark.parametrize("committed", [False, True])
async def test_consumer_killed_mid_step_is_reclaimed_and_applied_once(
        redis: aioredis.Redis, store: CaseStore, approval_settings: Settings,
        committed: bool) -> None:
    case_no = await submit(redis, store)
    doomed = aioredis.Redis.from_url(approval_settings.redis_url, decode_responses=True)
    [task] = await streams.read_new(doomed, [TOWN], "auto-doomed")
    if committed:  # died after its decision committed, before its effects and the ack
        await store.decide(case_no, task.seq, task.group, "auto-doomed", "approve", "",
                           utcnow())
    await doomed.aclose()
    survivor = AutoReviewer(redis, store, "auto-survivor", [TOWN, DISTRICT],
                            reclaim_idle_ms=100)
    await asyncio.sleep(0.15)
    await drain(survivor)
    detail = await store.get(case_no)
    assert detail["case"]["status"] == "certified"
    assert await decisions_per_step(store, case_no) == [1, 1]
    assert await redis.scard(keys.approval_queued()) == 0
    for g in (TOWN, DISTRICT):
        assert (await redis.xpending(keys.approval_tasks(g), streams.GROUP))["pending"] == 0


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[tuple[RedisServer, aioredis.Redis]]:
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    # Short retries: while the server is down each command should fail fast, not back off.
    client = aioredis.Redis.from_url(server.url, decode_responses=True,
                                     retry=Retry(ConstantBackoff(0.05), 1))
    try:
        yield server, client
    finally:
        await client.aclose()
        server.stop()


async def submit_riding_through(client: aioredis.Redis, store: CaseStore) -> str:
    """A submit whose Redis step may fail: the case is in PostgreSQL, the sweep enqueues it."""
    change = await store.create(submission("DB-SQ"), "clerk1", utcnow())
    with contextlib.suppress(RedisError):
        await effects.carry_out(client, change, "http://127.0.0.1:8080")
    return change.case_no


async def wait_certified(store: CaseStore, cases: list[str]) -> None:
    for _ in range(300):
        statuses = [(await store.get(c))["case"]["status"] for c in cases]
        if all(s == "certified" for s in statuses):
            return
        await asyncio.sleep(0.05)


async def test_redis_restart_and_data_loss_lose_no_case(
        own_redis: tuple[RedisServer, aioredis.Redis], store: CaseStore,
        approval_settings: Settings) -> None:
    server, client = own_redis
    settings = replace(approval_settings, redis_url=server.url, approval_sweep_s=0.1)
    stop = asyncio.Event()
    reviewer = AutoReviewer(client, store, "auto-1", [TOWN, DISTRICT], reclaim_idle_ms=300)
    jobs = [asyncio.create_task(reviewer.run(stop)),
            asyncio.create_task(sweep_forever(client, store, settings, stop))]
    try:
        cases = [await submit_riding_through(client, store) for _ in range(6)]
        server.stop()
        cases += [await submit_riding_through(client, store) for _ in range(2)]
        server.start()  # append-only file: streams and pending entries come back
        cases += [await submit_riding_through(client, store) for _ in range(2)]
        await wait_certified(store, cases)
        # Worse: Redis comes back empty. PostgreSQL's open steps are replayed into streams.
        more = [(await store.create(submission("DB-SQ"), "clerk1", utcnow())).case_no
                for _ in range(3)]
        await client.flushall()
        await wait_certified(store, more)
    finally:
        stop.set()
        await asyncio.gather(*jobs)
    for case_no in cases + more:
        assert (await store.get(case_no))["case"]["status"] == "certified", case_no
        assert await decisions_per_step(store, case_no) == [1, 1]


async def test_task_delivered_too_often_goes_to_dead_letter(
        redis: aioredis.Redis, store: CaseStore) -> None:
    await streams.enqueue(redis, "NO-SUCH-CASE", 1, TOWN)
    reviewer = AutoReviewer(redis, store, "auto-1", [TOWN], reclaim_idle_ms=0,
                            max_deliveries=2)
    [task] = await streams.read_new(redis, [TOWN], "auto-crashing")
    await streams.reclaim(redis, TOWN, "auto-crashing", 0)
    await reviewer.run_once(block_ms=10)  # third delivery: over the limit
    assert reviewer.counts == {"dead": 1}
    [entry] = await redis.lrange(keys.approval_dead(), 0, -1)
    assert task.case_no in entry and "delivered more than 2 times" in entry


async def test_unknown_case_goes_to_dead_letter_at_once(redis: aioredis.Redis,
                                                        store: CaseStore) -> None:
    await streams.enqueue(redis, "NO-SUCH-CASE", 1, TOWN)
    reviewer = AutoReviewer(redis, store, "auto-1", [TOWN])
    await reviewer.run_once(block_ms=10)
    assert reviewer.counts == {"dead": 1}
    assert await redis.llen(keys.approval_dead()) == 1


async def test_random_assignment_among_online_reviewers_and_claim(
        redis: aioredis.Redis, store: CaseStore, approval_settings: Settings) -> None:
    await streams.mark_online(redis, "reviewer_a", [TOWN], 30)
    await streams.mark_online(redis, "reviewer_b", [TOWN], 30)
    await streams.mark_online(redis, "reviewer_gone", [TOWN], 0.001)
    for i in range(10):
        await streams.enqueue(redis, f"C{i}", 1, TOWN)
    await asyncio.sleep(0.01)
    assigned = await streams.assign_random(redis, TOWN, random.Random(3))
    holders = {r for _, r in assigned}
    assert len(assigned) == 10 and holders == {"reviewer_a", "reviewer_b"}
    held = [await streams.held_by(redis, TOWN, r) for r in ("reviewer_a", "reviewer_b")]
    assert sum(len(h) for h in held) == 10
    # reviewer_a goes away: its work returns to the pool and another reviewer claims it.
    await asyncio.sleep(0.25)
    assert len(await streams.reclaim(redis, TOWN, streams.POOL, 200)) == 10
    got = await streams.claim(redis, [TOWN], "reviewer_c")
    assert got is not None and got.group == TOWN
    assert len(await streams.held_by(redis, TOWN, "reviewer_c")) == 1


async def test_overdue_step_escalates_to_the_group_and_shows_on_figures(
        redis: aioredis.Redis, store: CaseStore) -> None:
    case_no = await submit(redis, store, "LS-JZ")
    later = utcnow() + timedelta(days=30)
    changes = [c for c in await store.tick(later) if c.case_no == case_no]
    assert changes and any(isinstance(e, wf.Escalate) for e in changes[0].effects)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel())
    await effects.carry_out(redis, changes[0], "http://127.0.0.1:8080",
                            effects.group_leads(("town-civil-affairs=lead_town",)))
    told = []
    for _ in range(20):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if msg is not None:
            told.append(msg["data"])
    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it
    assert any(m.startswith("reviewer:lead_town\n") and case_no in m and "step_overdue" in m
               for m in told)
    assert f"{case_no}:1" in await redis.zrange(keys.approval_overdue(), 0, -1)
    assert case_no in (await redis.lrange(keys.approval_escalations(TOWN), 0, 0))[0]
    assert not [c for c in await store.tick(later) if c.case_no == case_no]  # escalated once
    # Deciding the step takes it off the overdue list.
    change = await store.decide(case_no, 1, TOWN, "r", "approve", "", utcnow())
    await effects.carry_out(redis, change, "http://127.0.0.1:8080")
    assert f"{case_no}:1" not in await redis.zrange(keys.approval_overdue(), 0, -1)


async def test_consumer_process_killed_while_applying_a_step(
        redis: aioredis.Redis, store: CaseStore, approval_settings: Settings) -> None:
    """A real consumer process is SIGKILLed while its decision waits inside PostgreSQL."""
    case_no = await submit(redis, store)
    env = {**os.environ, "REDIS_URL": approval_settings.redis_url,
           "DATABASE_URL": approval_settings.database_url,
           "ESEAL_KEY_DIR": str(approval_settings.eseal_key_dir), "RUN_MODE": "local",
           "PII_KEY_FILE": str(approval_settings.pii_key_file)}
    async with store.engine.connect() as blocker:
        trans = await blocker.begin()
        # Hold the case row so the consumer is stuck in the middle of applying the step.
        await blocker.execute(select(case_rows.c.case_no).where(case_rows.c.case_no == case_no)
                              .with_for_update())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "approval", "--auto", f"{TOWN},{DISTRICT}", "--name",
            "doomed", "--no-sweep", env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL)
        try:
            for _ in range(1200):  # the process may take a while to start on a busy machine
                info = await redis.xpending(keys.approval_tasks(TOWN), streams.GROUP)
                if info["pending"]:
                    break
                await asyncio.sleep(0.05)
            assert [c["name"] for c in info["consumers"]] == ["doomed-0"]
            await asyncio.sleep(0.2)  # its decide is now waiting on the row lock
        finally:
            proc.kill()
            await proc.wait()
        await trans.rollback()
    survivor = AutoReviewer(redis, store, "auto-survivor", [TOWN, DISTRICT],
                            reclaim_idle_ms=100)
    await asyncio.sleep(0.15)
    await drain(survivor)
    assert (await store.get(case_no))["case"]["status"] == "certified"
    assert await decisions_per_step(store, case_no) == [1, 1]

"""The approval worker's evidence jobs: the daily retention run and the signed audit
checkpoint at a fixed interval. One worker at a time runs each (a Redis lock); a restart
does not run retention again before its interval has passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.retention import RetentionJob
from core import keys
from core.audit_checkpoints import sign_checkpoint
from core.settings import Settings

log = logging.getLogger("approval.evidence_jobs")
RETENTION_LOCK_S = 3600  # a run takes far less; the lock only guards against a twin


def retention_due(last_run: float | None, now: float, interval_s: float) -> bool:
    return last_run is None or now - last_run >= interval_s


async def retention_once(redis: aioredis.Redis, engine: AsyncEngine, settings: Settings,
                         now: float) -> bool:
    """Run retention if due and nobody else is; True if it ran."""
    raw = await redis.get(keys.retention_last_run())
    if not retention_due(float(raw) if raw else None, now, settings.retention_interval_s):
        return False
    if not await redis.set(keys.retention_lock(), settings.node_id, nx=True,
                           ex=RETENTION_LOCK_S):
        return False
    try:
        report = await RetentionJob(engine, settings).run(datetime.fromtimestamp(now, UTC))
        await redis.set(keys.retention_last_run(), f"{now:.3f}")
        log.info("retention run", extra={"deleted": len(report.deleted),
                                         "held": len(report.held), "resumed": report.resumed})
    finally:
        await redis.delete(keys.retention_lock())
    return True


async def checkpoint_once(redis: aioredis.Redis, engine: AsyncEngine, settings: Settings,
                          now: float) -> bool:
    lock = await redis.set(keys.audit_checkpoint_lock(), settings.node_id, nx=True,
                           px=int(settings.audit_checkpoint_s * 1000))
    if not lock:
        return False
    signed = await sign_checkpoint(engine, settings.evidence_keys,
                                   datetime.fromtimestamp(now, UTC))
    if signed is not None:
        log.info("audit checkpoint signed", extra={"upto_id": signed["upto_id"]})
    return True


async def evidence_forever(redis: aioredis.Redis, engine: AsyncEngine, settings: Settings,
                           stop: asyncio.Event) -> None:
    """Both jobs, checked every minute (or sooner when the checkpoint interval is short)."""
    tick = min(60.0, settings.audit_checkpoint_s, settings.retention_interval_s)
    while not stop.is_set():
        for name, job in (("checkpoint", checkpoint_once), ("retention", retention_once)):
            try:
                await job(redis, engine, settings, time.time())
            except (RedisError, SQLAlchemyError, OSError) as exc:
                log.warning("%s job failed, it will be retried: %s", name, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)

"""Signed audit checkpoints: `core.audit verify` names an edited entry, a rewritten chain,
a cut-off tail and a forged checkpoint; the approval worker signs them at its interval."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.evidence_jobs import checkpoint_once, retention_due, retention_once
from approval.store import CaseStore
from core import audit, keys, records
from core.audit_checkpoints import sign_checkpoint
from core.qa_tables import audit_checkpoints
from core.settings import ROOT, Settings
from tests.approval.conftest import submission

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def entries(store: CaseStore, n: int) -> list[str]:
    cases = []
    for _ in range(n):
        change = await store.create(submission("LS-JZ"), "clerk1", datetime.now(UTC))
        cases.append(change.case_no)
    return cases


async def rows(engine: AsyncEngine) -> list[Any]:
    t = records.audit_log
    async with engine.connect() as conn:
        return list((await conn.execute(select(t).order_by(t.c.id))).mappings().all())


async def rewrite_from(engine: AsyncEngine, entry_id: int, actor: str) -> None:
    """What someone with write access to the table could do: change an entry and recompute
    every hash after it, so the chain alone looks whole."""
    t = records.audit_log
    prev = audit.GENESIS
    async with engine.begin() as conn:
        for row in (await conn.execute(select(t).order_by(t.c.id))).mappings().all():
            values = dict(row)
            if row["id"] == entry_id:
                values["actor"] = actor
            if row["id"] >= entry_id:
                h = audit.entry_hash(row["id"], row["at"], values["actor"], row["action"],
                                     row["subject"], row["before"], row["after"], prev)
                await conn.execute(update(t).where(t.c.id == row["id"]).values(
                    actor=values["actor"], prev_hash=prev, entry_hash=h))
                prev = h
            else:
                prev = row["entry_hash"]


async def test_a_rewritten_chain_passes_the_chain_but_not_the_checkpoint(
        store: CaseStore, engine: AsyncEngine, qa_settings: Settings) -> None:
    await entries(store, 3)
    signer = qa_settings.evidence_keys
    assert await sign_checkpoint(engine, signer, NOW) is not None
    assert await sign_checkpoint(engine, signer, NOW) is None  # nothing new to cover
    count, broken = await audit.verify(engine, signer)
    assert broken is None and count == 3
    first = (await rows(engine))[0]
    await rewrite_from(engine, first["id"], "someone-else")
    assert (await audit.verify(engine))[1] is None  # the bare chain is fooled
    _, broken = await audit.verify(engine, signer)
    assert broken is not None and "rewritten" in broken.reason


async def test_an_edited_entry_is_named(store: CaseStore, engine: AsyncEngine,
                                        qa_settings: Settings) -> None:
    await entries(store, 3)
    await sign_checkpoint(engine, qa_settings.evidence_keys, NOW)
    victim = (await rows(engine))[1]
    t = records.audit_log
    async with engine.begin() as conn:
        await conn.execute(update(t).where(t.c.id == victim["id"]).values(
            after={**victim["after"], "outcome": "现场开单"}))
    _, broken = await audit.verify(engine, qa_settings.evidence_keys)
    assert broken is not None and broken.entry_id == victim["id"]
    assert "changed" in broken.reason


async def test_a_cut_off_tail_is_caught(store: CaseStore, engine: AsyncEngine,
                                        qa_settings: Settings) -> None:
    await entries(store, 4)
    await sign_checkpoint(engine, qa_settings.evidence_keys, NOW)
    every = await rows(engine)
    t = records.audit_log
    async with engine.begin() as conn:
        await conn.execute(t.delete().where(t.c.id >= every[2]["id"]))
    assert (await audit.verify(engine))[1] is None  # what is left is a whole chain
    _, broken = await audit.verify(engine, qa_settings.evidence_keys)
    assert broken is not None and "last entries were removed" in broken.reason


async def test_a_forged_checkpoint_is_refused(store: CaseStore, engine: AsyncEngine,
                                              qa_settings: Settings) -> None:
    await entries(store, 2)
    await sign_checkpoint(engine, qa_settings.evidence_keys, NOW)
    async with engine.begin() as conn:
        await conn.execute(update(audit_checkpoints).values(entry_hash="0" * 64))
    _, broken = await audit.verify(engine, qa_settings.evidence_keys)
    assert broken is not None and "columns differ" in broken.reason


async def test_the_verify_command_checks_the_checkpoints(
        store: CaseStore, engine: AsyncEngine, qa_settings: Settings) -> None:
    await entries(store, 2)
    await sign_checkpoint(engine, qa_settings.evidence_keys, NOW)
    env = {**os.environ, "DATABASE_URL": qa_settings.database_url,
           "EVIDENCE_KEY_DIR": str(qa_settings.evidence_key_dir)}

    async def run() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.audit", "verify", env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return int(proc.returncode or 0), out.decode()

    code, out = await run()
    assert code == 0 and "intact: 2 entries" in out
    first = (await rows(engine))[0]
    await rewrite_from(engine, first["id"], "intruder")
    code, out = await run()
    assert code == 1 and "BROKEN" in out and "rewritten" in out


async def test_the_worker_signs_at_its_interval_and_runs_retention_daily(
        store: CaseStore, engine: AsyncEngine, qa_settings: Settings,
        redis: aioredis.Redis) -> None:
    await entries(store, 1)
    assert await checkpoint_once(redis, engine, qa_settings, NOW.timestamp())
    assert not await checkpoint_once(redis, engine, qa_settings, NOW.timestamp() + 1)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(audit_checkpoints))).all()) == 1
    assert retention_due(None, 0, 86400) and not retention_due(100.0, 86499.0, 86400)
    day = NOW.timestamp()
    assert await retention_once(redis, engine, qa_settings, day)
    assert not await retention_once(redis, engine, qa_settings, day + 3600)
    assert await redis.get(keys.retention_last_run()) == f"{day:.3f}"
    assert await retention_once(redis, engine, qa_settings,
                                day + timedelta(days=1).total_seconds())

"""Case records in PostgreSQL: transitions, timing, certificates and the audit chain."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from approval import workflow as wf
from approval.eseal import SealKeys
from approval.store import CaseRefused, CaseStore
from core import audit, records
from core.settings import ROOT, Settings
from tests.approval.conftest import submission


def now() -> datetime:
    return datetime.now(UTC)


async def test_two_level_case_is_approved_timed_and_certified(store: CaseStore) -> None:
    change = await store.create(submission("DB-SQ"), "clerk1", now())
    assert change.effects == (wf.OpenTasks(1, ("town-civil-affairs",)),)
    case_no = change.case_no
    c = await store.decide(case_no, 1, "town-civil-affairs", "reviewer_town", "approve", "",
                           now())
    assert c.applied == "applied" and c.state.current is not None
    assert c.state.current.groups == ["district-civil-affairs"]
    c = await store.decide(case_no, 2, "district-civil-affairs", "reviewer_district",
                           "approve", "同意", now())
    assert c.state.status == "certified" and c.state.certificate_no
    detail = await store.get(case_no)
    assert [s["outcome"] for s in detail["steps"]] == ["approved", "approved"]
    assert all(s["duration_s"] is not None and s["ended_at"] for s in detail["steps"])
    assert [d["reviewer"] for d in detail["decisions"]] == ["reviewer_town", "reviewer_district"]
    row = await store.certificate(c.state.certificate_no)
    assert row is not None
    assert store.seal.check(row["content"], row["signature"], row["key_id"])
    assert "刘桂兰" in row["content"] and "420115" in row["content"]


async def test_redelivered_decision_is_applied_once(store: CaseStore) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    first = await store.decide(change.case_no, 1, "town-civil-affairs", "r1", "approve", "",
                               now())
    again = await store.decide(change.case_no, 1, "town-civil-affairs", "r1", "approve", "",
                               now())
    assert first.applied == "applied" and again.applied == "duplicate"
    assert len((await store.get(change.case_no))["decisions"]) == 1


async def test_core_material_cannot_be_missing_and_promise_recorded(store: CaseStore) -> None:
    with pytest.raises(CaseRefused, match="核心材料"):
        await store.create(submission("DB-SQ", ["身份证"], "2099-01-01"), "clerk1", now())
    change = await store.create(submission("DB-SQ", ["收入证明"], "2099-01-01"), "clerk1",
                                now())
    mats = {m["name"]: m for m in (await store.get(change.case_no))["materials"]}
    assert not mats["收入证明"]["provided"] and str(mats["收入证明"]["promised_date"]) == \
        "2099-01-01"


async def test_return_and_resubmit_then_deliver(store: CaseStore) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    c = await store.decide(change.case_no, 1, "town-civil-affairs", "r", "return",
                           "申请书缺少签字", now())
    assert c.state.status == "returned"
    c = await store.resubmit(change.case_no, "clerk1", now() + timedelta(seconds=1))
    assert c.effects == (wf.OpenTasks(2, ("town-civil-affairs",)),)
    c = await store.decide(change.case_no, 2, "town-civil-affairs", "r", "approve", "", now())
    assert c.state.status == "certified"
    c = await store.deliver(change.case_no, "T-420115-001", now())
    assert c.state.status == "delivered"
    with pytest.raises(CaseRefused):
        await store.deliver(change.case_no, "T-420115-001", now())


async def test_audit_chain_detects_and_names_a_tampered_row(store: CaseStore,
                                                           engine: AsyncEngine) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    await store.decide(change.case_no, 1, "town-civil-affairs", "r", "approve", "", now())
    count, broken = await audit.verify(engine)
    assert broken is None and count >= 2
    t = records.audit_log
    async with engine.begin() as conn:
        victim = (await conn.execute(select(t.c.id, t.c.after).where(
            t.c.subject == change.case_no).order_by(t.c.id).limit(1))).one()
        await conn.execute(t.update().where(t.c.id == victim.id).values(
            after={**victim.after, "outcome": "现场开单"}))
    try:
        _, broken = await audit.verify(engine)
        assert broken is not None and broken.entry_id == victim.id
        assert broken.subject == change.case_no
    finally:
        async with engine.begin() as conn:
            await conn.execute(t.update().where(t.c.id == victim.id).values(after=victim.after))
    assert (await audit.verify(engine))[1] is None


async def test_audit_chain_detects_a_deleted_row(store: CaseStore, engine: AsyncEngine) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    await store.decide(change.case_no, 1, "town-civil-affairs", "r", "approve", "", now())
    t = records.audit_log
    async with engine.begin() as conn:
        rows = (await conn.execute(select(t).where(t.c.subject == change.case_no)
                                   .order_by(t.c.id))).mappings().all()
        await conn.execute(t.delete().where(t.c.id == rows[0]["id"]))
    try:
        _, broken = await audit.verify(engine)
        assert broken is not None and broken.entry_id == rows[1]["id"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(t.insert().values(**rows[0]))
            await conn.execute(text("SELECT 1"))
    assert (await audit.verify(engine))[1] is None


async def test_expired_promise_terminates_on_tick(store: CaseStore) -> None:
    tomorrow = (now() + timedelta(days=1)).date().isoformat()
    change = await store.create(submission("DB-SQ", ["收入证明"], tomorrow), "clerk1", now())
    changes = await store.tick(now() + timedelta(days=3))
    mine = [c for c in changes if c.case_no == change.case_no]
    assert mine and mine[0].state.status == "terminated"
    assert (await store.get(change.case_no))["case"]["open_groups"] == []


async def verify_command(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.audit", "verify", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def test_verify_command_names_the_first_broken_entry(
        store: CaseStore, engine: AsyncEngine, approval_settings: Settings) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    env = {**os.environ, "DATABASE_URL": approval_settings.database_url}
    code, out = await verify_command(env)
    assert code == 0 and "intact" in out
    t = records.audit_log
    async with engine.begin() as conn:
        victim = (await conn.execute(select(t.c.id, t.c.actor).where(
            t.c.subject == change.case_no))).one()
        await conn.execute(t.update().where(t.c.id == victim.id).values(actor="someone-else"))
    try:
        code, out = await verify_command(env)
    finally:
        async with engine.begin() as conn:
            await conn.execute(t.update().where(t.c.id == victim.id).values(actor=victim.actor))
    assert code == 1 and f"id={victim.id}" in out


async def test_rotated_seal_key_keeps_old_certificates_valid(store: CaseStore) -> None:
    async def certify() -> dict[str, Any]:
        change = await store.create(submission("LS-JZ"), "clerk1", now())
        c = await store.decide(change.case_no, 1, "town-civil-affairs", "r", "approve", "",
                               now())
        assert c.state.certificate_no
        row = await store.certificate(c.state.certificate_no)
        assert row is not None
        return row

    old = await certify()
    store.seal = SealKeys(store.seal.folder, "seal-2")  # rotation: a new key id signs
    new = await certify()
    assert (old["key_id"], new["key_id"]) == ("seal-1", "seal-2")
    for row in (old, new):
        assert store.seal.check(row["content"], row["signature"], row["key_id"])
    assert not store.seal.check(old["content"], old["signature"], "seal-2")
    assert not store.seal.check(old["content"].replace("刘桂兰", "王小二"), old["signature"],
                                "seal-1")


async def test_finished_cases_are_archived_later_and_steps_are_timed(store: CaseStore) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", now())
    await store.decide(change.case_no, 1, "town-civil-affairs", "r", "approve", "", now())
    await store.deliver(change.case_no, "T-420115-001", now())
    assert change.case_no not in [c.case_no for c in await store.archive_due(
        now() - timedelta(days=1))]
    archived = await store.archive_due(now() + timedelta(seconds=1))
    assert change.case_no in [c.case_no for c in archived]
    assert (await store.get(change.case_no))["case"]["status"] == "archived"
    figures = {f["level"]: f for f in await store.step_figures(now() - timedelta(hours=1))}
    assert figures["town"]["steps"] >= 1 and figures["town"]["mean_s"] >= 0

"""Review controls, the append-only audit log under the application's role, and signed
revocations (issue 16, items 10 and 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from approval import workflow as wf
from approval.calendar import WorkCalendar
from approval.revocation import revocation_holds
from approval.store import CaseStore
from approval.tables import certificates
from core import audit, records
from core.migrate import allow_app_login, app_url
from signaling.appkeys import CASES
from testkit.demo import DEMO_ACCOUNTS
from testkit.demo_catalogue import DEMO_ITEMS
from tests.approval.conftest import submission
from tests.conftest import Stack
from tests.security.conftest import staff

MON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_joint_review_needs_a_different_person_for_each_department() -> None:
    config = wf.WorkflowConfig.model_validate(
        {"steps": [{"level": "town", "groups": ["a", "b"], "mode": "all"}]})
    mats = [wf.CaseMaterial(name="身份证", core=True, provided=True)]
    t = wf.submit("C1", config, 10, mats, None, MON, WorkCalendar.parse(""))
    t = wf.decide(t.state, "a", "same-person", "approve", "", MON, WorkCalendar.parse(""))
    with pytest.raises(wf.InvalidTransition, match="不同人员"):
        wf.decide(t.state, "b", "same-person", "approve", "", MON, WorkCalendar.parse(""))
    done = wf.decide(t.state, "b", "another-person", "approve", "", MON, WorkCalendar.parse(""))
    assert done.state.status == "approved"


def test_the_demo_seed_never_gives_one_account_two_groups_of_one_joint_review() -> None:
    for item in DEMO_ITEMS:
        for step in item.workflow["steps"]:  # type: ignore[attr-defined]
            if step["mode"] != "all":
                continue
            for account in DEMO_ACCOUNTS:
                both = set(step["groups"]) & set(account.review_groups)
                assert len(both) <= 1, (item.code, account.username, both)


async def test_a_reviewer_decides_only_what_was_assigned_or_claimed(
        server: TestServer, redis: aioredis.Redis) -> None:
    store: CaseStore = server.app[CASES]
    change = await store.create(submission("LS-JZ"), "clerk1", datetime.now(UTC))
    from approval import effects

    await effects.carry_out(redis, change, "")
    reviewer = await staff(server, "reviewer_town")
    decide = {"case_no": change.case_no, "seq": 1, "group": "town-civil-affairs",
              "decision": "approve"}
    resp = await reviewer.post("/api/reviewer/decide", json=decide)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_assigned"
    claimed = (await (await reviewer.post("/api/reviewer/claim")).json())["task"]
    assert claimed["case_no"] == change.case_no
    assert (await reviewer.post("/api/reviewer/decide", json=decide)).status == 200
    await reviewer.close()


@pytest.fixture
async def app_engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(allow_app_login, stack.postgres.url)
    engine = records.make_engine(app_url(stack.postgres.url))
    yield engine
    await engine.dispose()


async def test_the_application_role_adds_to_the_audit_log_but_cannot_change_it(
        app_engine: AsyncEngine) -> None:
    async with app_engine.begin() as conn:
        await audit.append(conn, "test", "test.append", "s", None, {"n": 1}, datetime.now(UTC))
    for statement in ("UPDATE audit_log SET actor = 'forger'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app_engine.begin() as conn:
                await conn.execute(text(statement))
    async with app_engine.connect() as conn:  # the rest of its work it may do
        assert await conn.scalar(text("SELECT count(*) FROM cases")) is not None


async def test_a_revocation_carries_the_seals_signature(server: TestServer) -> None:
    store: CaseStore = server.app[CASES]
    change = await store.create(submission("LS-JZ"), "clerk1", datetime.now(UTC))
    done = await store.decide(change.case_no, 1, "town-civil-affairs", "reviewer_town",
                              "approve", "", datetime.now(UTC))
    number = done.state.certificate_no
    assert number is not None
    await store.revoke(number, "admin", "发证错误", datetime.now(UTC))
    row = await store.certificate(number)
    assert row is not None and row["revoked_by"] == "admin"
    assert revocation_holds(store.seal, row)
    async with store.engine.begin() as conn:  # someone edits the reason afterwards
        await conn.execute(certificates.update().where(
            certificates.c.certificate_no == number).values(revoked_reason="别的理由"))
    edited = await store.certificate(number)
    assert edited is not None and not revocation_holds(store.seal, edited)

"""A case carries the server's identity result of its own call: refused with another call's
verification, with none (or a browser-made one) unless a clerk overrode with a reason; the
override is audited and shown; the record is read by the call's clerk, not by others."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import make_store
from core.identity_tables import identity_checks
from core.pii import keys_for
from core.records import audit_log, make_engine
from core.settings import Settings
from signaling import auth, cases_api, identity_api
from signaling.appkeys import CASES, ENGINE, REDIS, SETTINGS
from testkit.calls import bound_call
from tests.approval.conftest import ID_NUMBER, submission

Client = TestClient[web.Request, web.Application]
TERMINAL = "T-420115-001"


@pytest.fixture
async def engine(settings: Settings) -> Any:
    eng = make_engine(settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, redis: aioredis.Redis,
                 engine: AsyncEngine, tmp_path: Any) -> Client:
    from dataclasses import replace

    s = replace(settings, eseal_key_dir=tmp_path / "eseal")
    app = web.Application()
    app[SETTINGS] = s
    app[REDIS] = redis
    app[ENGINE] = engine
    app[CASES] = make_store(engine, s)
    for routes in (auth, cases_api, identity_api):
        routes.setup_routes(app)
    c: Client = await aiohttp_client(app)
    return c


async def login(client: Client, username: str) -> None:
    resp = await client.post("/api/login", json={"username": username, "password": "demo1234"})
    assert resp.status == 200


async def a_check(engine: AsyncEngine, settings: Settings, call_id: str, verdict: str,
                  terminal_id: str = TERMINAL, clerk: str = "clerk1",
                  card_number: str = ID_NUMBER) -> str:
    """A check as the worker records it (the media tests run real ones)."""
    vid = secrets.token_hex(12)
    pii = keys_for(settings.pii_key_file, True)
    async with engine.begin() as conn:
        await conn.execute(insert(identity_checks).values(
            verification_id=vid, call_id=call_id, terminal_id=terminal_id, clerk=clerk,
            attempt=1, state="decided", verdict=verdict, reasons=["人证比对一致"],
            distance=0.41 if verdict == "通过" else 0.57,
            thresholds={"pass_below": 0.53, "fail_above": 0.6}, model_version="test",
            id_number_enc=pii.encrypt(card_number, "identity_checks"),
            id_number_masked="4201**********1234"))
    return vid


async def post_case(client: Client, call_id: str, verification: dict[str, Any]
                    ) -> tuple[int, dict[str, Any]]:
    sub = submission().model_copy(update={"call_id": call_id, "scans": [],
                                          "verification": verification})
    resp = await client.post("/api/cases", data=sub.model_dump_json(),
                             headers={"Content-Type": "application/json"})
    return resp.status, await resp.json()


async def test_a_case_carries_the_passed_check_of_its_own_call(
        client: Client, redis: aioredis.Redis, engine: AsyncEngine, settings: Settings) -> None:
    await bound_call(redis, engine, "call-idn-1", TERMINAL, "clerk1")
    vid = await a_check(engine, settings, "call-idn-1", "通过")
    await login(client, "clerk1")
    status, body = await post_case(client, "call-idn-1", {
        "verification_id": vid, "verdict": "pass", "distance": 0.01})  # extras are dropped
    assert status == 201, body
    case = await (await client.get(f"/api/cases/{body['case_no']}")).json()
    shown = case["case"]["verification"]
    assert shown["verification_id"] == vid and shown["decision"] == "通过"
    assert shown["distance"] == 0.41 and shown["id_number_matches_card"] is True


async def test_another_calls_check_or_none_is_refused(
        client: Client, redis: aioredis.Redis, engine: AsyncEngine, settings: Settings) -> None:
    await bound_call(redis, engine, "call-idn-2", TERMINAL, "clerk1")
    await bound_call(redis, engine, "call-idn-other", TERMINAL, "clerk1")
    other = await a_check(engine, settings, "call-idn-other", "通过")
    elsewhere = await a_check(engine, settings, "call-idn-2", "通过",
                              terminal_id="T-420115-002")
    await login(client, "clerk1")
    tries: list[tuple[dict[str, Any], str]] = [
        ({"verification_id": other}, "foreign_verification"),
        ({"verification_id": elsewhere}, "foreign_verification"),
        ({"verification_id": "no-such-check"}, "foreign_verification"),
        ({}, "no_verification"),
        ({"verdict": "pass", "score": 0.99}, "no_verification"),  # made by the browser
        ({"override": {"reason": "我说了算", "text": "没有理由"}}, "no_verification"),
    ]
    for verification, code in tries:
        status, body = await post_case(client, "call-idn-2", verification)
        assert status == 422 and body["error"]["code"] == code, (verification, body)


async def test_review_needs_an_audited_override_before_the_case(
        client: Client, redis: aioredis.Redis, engine: AsyncEngine, settings: Settings) -> None:
    await bound_call(redis, engine, "call-idn-3", TERMINAL, "clerk1", second_clerk="clerk2")
    vid = await a_check(engine, settings, "call-idn-3", "人工复核")
    await login(client, "clerk1")
    status, body = await post_case(client, "call-idn-3", {"verification_id": vid})
    assert status == 422 and body["error"]["code"] == "verification_not_accepted"

    reasons = (await (await client.get("/api/identity/reasons")).json())["reasons"]
    assert "证件照片年代久远" in reasons
    bad = await client.post(f"/api/identity/{vid}/override",
                            json={"reason": "随便", "text": "照片太旧"})
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "bad_reason"

    await login(client, "clerk2")  # the second clerk sees the record but does not decide
    seen = await client.get(f"/api/identity/{vid}")
    assert seen.status == 200 and (await seen.json())["verdict"] == "人工复核"
    refused = await client.post(f"/api/identity/{vid}/override",
                                json={"reason": "证件照片年代久远", "text": "照片是十五年前的"})
    assert refused.status == 403

    await login(client, "clerk1")
    done = await client.post(f"/api/identity/{vid}/override",
                             json={"reason": "证件照片年代久远", "text": "照片是十五年前的"})
    assert done.status == 200, await done.text()
    record = await done.json()
    assert record["decision"] == "人工核验" and record["override_by"] == "clerk1"
    async with engine.connect() as conn:
        entries = (await conn.execute(select(audit_log).where(
            audit_log.c.subject == vid))).mappings().all()
    assert any(e["action"] == "identity.override" for e in entries)

    status, body = await post_case(client, "call-idn-3", {"verification_id": vid})
    assert status == 201, body
    case = await (await client.get(f"/api/cases/{body['case_no']}")).json()
    shown = case["case"]["verification"]
    assert shown["decision"] == "人工核验" and shown["override"]["by"] == "clerk1"
    assert shown["override"]["reason"] == "证件照片年代久远"


async def test_a_typed_number_unlike_the_cards_is_flagged_and_strangers_see_nothing(
        client: Client, redis: aioredis.Redis, engine: AsyncEngine, settings: Settings) -> None:
    from verify.idnumber import with_check_digit

    await bound_call(redis, engine, "call-idn-4", TERMINAL, "clerk1")
    vid = await a_check(engine, settings, "call-idn-4", "通过",
                        card_number=with_check_digit("42011519750101123"))
    await login(client, "clerk2")  # not in that call
    assert (await client.get(f"/api/identity/{vid}")).status == 404
    await login(client, "clerk1")
    status, body = await post_case(client, "call-idn-4", {"verification_id": vid})
    assert status == 201
    case = await (await client.get(f"/api/cases/{body['case_no']}")).json()
    assert case["case"]["verification"]["id_number_matches_card"] is False

"""问题件 end to end over REST (标记 → 指派 → 整改 → 复核 → 关闭, also from the reviewer who
returned the case), a case's whole history in order, evaluations and per-clerk results,
legal holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore
from core.settings import Settings
from tests.approval.conftest import submission
from tests.qa.conftest import Client, login, recorded


async def post(client: Client, path: str, body: dict[str, Any], status: int = 200) -> Any:
    resp = await client.post(path, json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_a_flag_goes_all_the_way_and_the_history_shows_every_step(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    opened = await post(client, "/api/qa/replays", {"call_id": call.call_id,
                                                    "purpose": "问题件复核"}, 201)
    flag = await post(client, "/api/qa/flags", {"call_id": call.call_id, "at_s": 1.5,
                                                "category": "告知不全",
                                                "note": "未一次性告知需补材料"}, 201)
    assert flag["case_no"] == call.case_no and flag["state_name"] == "标记"
    bad = await client.post("/api/qa/flags", json={"call_id": call.call_id,
                                                   "category": "乱写", "note": "x"})
    assert bad.status == 400
    steps = f"/api/qa/flags/{flag['flag_id']}/steps"
    early = await client.post(steps, json={"action": "close"})
    assert early.status == 409 and "理由" in (await early.json())["error"]["message"]
    nobody = await client.post(steps, json={"action": "assign", "assignee": "ghost"})
    assert nobody.status == 400
    assert (await post(client, steps, {"action": "assign", "assignee": "clerk1"}))[
        "state_name"] == "指派"
    await post(client, steps, {"action": "rectify", "note": "已电话告知并补齐"})
    await post(client, steps, {"action": "recheck", "passed": False, "note": "录音未体现"})
    await post(client, steps, {"action": "rectify", "note": "已重新告知，申请人确认"})
    await post(client, steps, {"action": "recheck", "passed": True})
    closed = await post(client, steps, {"action": "close"})
    assert closed["state"] == "closed"
    listed = (await (await client.get("/api/qa/flags", params={"state": "all"})).json())["rows"]
    mine = next(f for f in listed if f["flag_id"] == flag["flag_id"])
    assert [s["state_name"] for s in mine["steps"]] == [
        "标记", "指派", "整改", "指派", "整改", "复核", "关闭"]
    assert all(s["actor"] == "qa1" for s in mine["steps"])
    assert flag["flag_id"] not in [f["flag_id"] for f in (await (await client.get(
        "/api/qa/flags")).json())["rows"]]  # the default list is the open ones

    detail = await (await client.get(f"/api/qa/calls/{call.call_id}")).json()
    marker = next(e for e in detail["timeline"] if e["kind"] == "flag")
    assert marker["offset_s"] == 1.5 and marker["label"] == "问题件：告知不全"

    history = await (await client.get(f"/api/qa/cases/{call.case_no}/history")).json()
    labels = [e["label"] for e in history["events"]]
    assert labels.index("视频通话开始") < labels.index("拍摄材料") < labels.index("受理提交")
    assert labels.index("受理提交") < labels.index("回放录像") < labels.index("登记问题件")
    assert labels[-1] == "问题件关闭" and labels.count("问题件整改") == 2
    times = [e["at"] for e in history["events"]]
    assert times == sorted(times)
    assert [a["id"] for a in history["accesses"]] == [opened["access_id"]]


async def test_the_reviewer_who_returns_a_case_may_flag_it(
        client: Client, store: CaseStore) -> None:
    change = await store.create(submission("LS-JZ"), "clerk1", datetime.now(UTC))
    other = await store.create(submission("LS-JZ"), "clerk1", datetime.now(UTC))
    await store.decide(change.case_no, 1, "town-civil-affairs", "reviewer_town", "return",
                       "缺少户口簿", datetime.now(UTC))
    await login(client, "reviewer_town")
    body = {"case_no": change.case_no, "category": "材料问题", "note": "受理时未收户口簿"}
    flag = await post(client, "/api/qa/flags", body, 201)
    assert flag["state"] == "marked"
    refused = await client.post("/api/qa/flags", json={**body, "case_no": other.case_no})
    assert refused.status == 403
    assert (await client.post(f"/api/qa/flags/{flag['flag_id']}/steps",
                              json={"action": "assign", "assignee": "clerk1"})).status == 403
    await login(client, "qa1")
    rows = (await (await client.get("/api/qa/flags", params={
        "case_no": change.case_no})).json())["rows"]
    assert [(r["source"], r["created_by"]) for r in rows] == [("review_return",
                                                               "reviewer_town")]


async def test_score_sheets_and_per_clerk_results(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    a = await recorded(engine, qa_settings, store)
    b = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    items = (await (await client.get("/api/qa/config")).json())["score_items"]
    assert items == ["文明用语", "身份核验", "一次性告知", "材料审核", "办结时限"]
    partial = await client.post("/api/qa/evaluations", json={
        "call_id": a.call_id, "scores": {"文明用语": 5}})
    assert partial.status == 400 and "每一项" in (await partial.json())["error"]["message"]
    too_high = await client.post("/api/qa/evaluations", json={
        "call_id": a.call_id, "scores": dict.fromkeys(items, 6)})
    assert too_high.status == 400
    first = await post(client, "/api/qa/evaluations", {
        "call_id": a.call_id, "scores": dict.fromkeys(items, 5), "comment": "规范"}, 201)
    assert first == {"id": first["id"], "total": 100.0, "clerk": "clerk1"}
    await post(client, "/api/qa/evaluations", {
        "call_id": b.call_id, "scores": {**dict.fromkeys(items, 4), "一次性告知": 2}}, 201)
    results = await (await client.get("/api/qa/evaluations/clerks",
                                      params={"clerk": "clerk1"})).json()
    [row] = results["rows"]
    assert row["sheets"] == 2 and row["mean"] == 86.0 and row["clerk_name"].startswith("张敏")
    assert row["items"]["一次性告知"] == 3.5 and row["month"] == datetime.now(UTC).strftime(
        "%Y-%m")


async def test_legal_holds_are_placed_by_qa_and_released_by_admin(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    assert (await client.post("/api/qa/holds", json={"case_no": call.case_no})).status == 400
    hold = await post(client, "/api/qa/holds", {"case_no": call.case_no,
                                                "reason": "申请人投诉，待调查"}, 201)
    active = (await (await client.get("/api/qa/holds")).json())["holds"]
    assert [h["hold_id"] for h in active] == [hold["hold_id"]]
    release = f"/api/qa/holds/{hold['hold_id']}/release"
    assert (await client.post(release, json={})).status == 403
    await login(client, "admin")
    await post(client, release, {"note": "调查结束"})
    assert (await client.post(release, json={})).status == 409
    assert (await (await client.get("/api/qa/holds")).json())["holds"] == []

"""The QA REST routes in the whole signaling app: search and paging, a call's detail beside
the video, replays opened only with a purpose and logged (also in the audit chain), the
watch report, and every QA route refused to clerks and terminals."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore
from core import records
from core.media_tables import recording_segments
from core.qa_tables import qa_flags
from core.replayticket import verify
from core.settings import Settings
from signaling.policy import ROUTES
from testkit.recordings import ID_NUMBER
from tests.qa.conftest import WORKER_URL, Client, login, recorded


async def get(client: Client, path: str, **params: Any) -> Any:
    resp = await client.get(path, params={k: str(v) for k, v in params.items()})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_search_filters_and_pages_on_the_server(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    calls = [await recorded(engine, qa_settings, store) for _ in range(3)]
    bare = await recorded(engine, qa_settings, terminal_id="T-420115-002", clerk="clerk2")
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(qa_flags).values(
            case_no=calls[0].case_no, call_id=calls[0].call_id, category="服务态度",
            note="未一次性告知", state="marked", source="qa", created_by="qa1",
            created_at=now, updated_at=now))
    await login(client, "qa1")
    page = await get(client, "/api/qa/calls", per_page=2)
    assert page["total"] == 4 and page["pages"] == 2 and len(page["rows"]) == 2
    rest = await get(client, "/api/qa/calls", per_page=2, page=2)
    assert {r["call_id"] for r in page["rows"] + rest["rows"]} == {
        c.call_id for c in [*calls, bare]}
    row = next(r for r in page["rows"] + rest["rows"] if r["call_id"] == calls[0].call_id)
    assert row["village"] == "江夏区五里界街道童周岭村" and row["clerk_name"].startswith("张敏")
    assert row["item_name"] == "城乡居民基本养老保险参保登记" and row["outcome"] == "放心回家"
    assert row["verdict_name"] == "通过" and row["open_flags"] == 1
    assert 2.5 <= row["duration_s"] <= 3.5

    async def found(**q: Any) -> set[str]:
        return {r["call_id"] for r in (await get(client, "/api/qa/calls", **q))["rows"]}

    assert await found(case_no=calls[1].case_no) == {calls[1].call_id}
    assert await found(id_number=ID_NUMBER) == {c.call_id for c in calls}
    assert await found(id_number=ID_NUMBER.lower()) == {c.call_id for c in calls}
    assert await found(place="小朱湾") == {bare.call_id}
    assert await found(place="T-420115-002") == {bare.call_id}
    assert await found(clerk="clerk2") == {bare.call_id} == await found(clerk="李强")
    assert await found(item="YL-CB", outcome="放心回家") == {c.call_id for c in calls}
    assert await found(verdict="pass") == {c.call_id for c in calls}
    assert await found(verdict="none") == {bare.call_id}
    assert await found(flagged="open") == {calls[0].call_id}
    assert await found(flagged="none") == {c.call_id for c in [*calls[1:], bare]}
    assert await found(satisfaction="满意") == set()  # no ratings are recorded yet
    later = (now + timedelta(hours=1)).isoformat()
    assert await found(**{"from": later}) == set()
    assert await found(to=later, per_page=100) == {c.call_id for c in [*calls, bare]}
    resp = await client.get("/api/qa/calls", params={"nonsense": "1"})
    assert resp.status == 400


async def test_a_replay_asks_a_purpose_logs_the_access_and_hands_a_ticket(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    no_purpose = await client.post("/api/qa/replays", json={"call_id": call.call_id})
    assert no_purpose.status == 400
    vague = await client.post("/api/qa/replays", json={"call_id": call.call_id,
                                                        "purpose": "其他"})
    assert vague.status == 400 and "写明用途" in (await vague.json())["error"]["message"]
    resp = await client.post("/api/qa/replays", json={"call_id": call.call_id,
                                                       "purpose": "抽查"})
    assert resp.status == 201, await resp.text()
    opened = await resp.json()
    assert opened["stream_url"] == f"{WORKER_URL}/replay/stream"
    claims = verify(qa_settings.join_token_secret, opened["ticket"], time.time())
    assert (claims.call_id, claims.viewer, claims.viewer_name, claims.kind) == (
        call.call_id, "qa1", "质检员 赵磊", "replay")
    assert claims.access_id == opened["access_id"]

    progress = f"/api/qa/replays/{opened['access_id']}/progress"
    assert (await client.post(progress, json={"watched_s": 1.5})).status == 200
    assert (await client.post(progress, json={"watched_s": 9999})).status == 200
    await login(client, "admin")
    assert (await client.post(progress, json={"watched_s": 1})).status == 404  # not theirs
    log = await get(client, "/api/qa/access", viewer="qa1")
    row = next(r for r in log["rows"] if r["id"] == opened["access_id"])
    assert (row["kind"], row["purpose"], row["case_no"]) == ("replay", "抽查", call.case_no)
    assert row["watched_s"] <= 10  # capped by the time since it opened
    await login(client, "qa1")
    assert (await client.get("/api/qa/access")).status == 403  # the log is for admin
    assert (await client.post(progress, json={"watched_s": 2, "ended": True})).status == 200
    t = records.audit_log
    async with engine.connect() as conn:
        entries = (await conn.execute(select(t.c.action, t.c.entry_hash, t.c.after).where(
            t.c.subject == call.case_no).order_by(t.c.id))).all()
    actions = [e.action for e in entries]
    assert actions[-2:] == ["qa.replay", "qa.replay.end"]
    assert entries[-2].entry_hash == row["audit_hash"]  # the access is in the audit chain
    assert entries[-2].after["purpose"] == "抽查"


async def test_a_call_detail_has_the_timeline_and_the_integrity_line(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    detail = await get(client, f"/api/qa/calls/{call.call_id}")
    assert detail["integrity"] == {"state": "intact", "message": "录像完整，未被篡改",
                                   "first_bad": None, "segments": 3, "ok": True}
    assert detail["case"]["case_no"] == call.case_no
    assert detail["case"]["id_number"] == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
    assert detail["case"]["phone"] == "138****8000"
    assert detail["verification"]["verdict"] == "通过"
    assert [s["scan_id"] for s in detail["scans"]] == [call.scan_id]
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "placed" and "capture" in kinds and kinds[-1] in ("ended",
                                                                         "case_submitted")
    capture = next(e for e in detail["timeline"] if e["kind"] == "capture")
    assert 0.5 <= capture["offset_s"] <= 1.5  # where to seek the video to
    middle = call.segments[1]
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    middle.write_bytes(bytes(data))
    broken = (await get(client, f"/api/qa/calls/{call.call_id}"))["integrity"]
    assert broken["state"] == "broken" and broken["first_bad"] == 2
    assert broken["message"] == "第 2 段内容被改动（与记录的哈希不符）"
    assert (await client.get("/api/qa/calls/no-such-call")).status == 404


async def test_a_deleted_middle_or_last_segment_is_named(
        client: Client, engine: AsyncEngine, qa_settings: Settings) -> None:
    middle = await recorded(engine, qa_settings)
    last = await recorded(engine, qa_settings)
    for call, seq in ((middle, 1), (last, 2)):  # the file and its row, as someone would
        call.segments[seq].unlink()
        async with engine.begin() as conn:
            await conn.execute(recording_segments.delete().where(
                recording_segments.c.call_id == call.call_id,
                recording_segments.c.seq == seq))
    await login(client, "qa1")
    gap = (await get(client, f"/api/qa/calls/{middle.call_id}"))["integrity"]
    assert gap["first_bad"] == 2 and gap["message"] == "第 2 段缺失（录像记录被删除）"
    tail = (await get(client, f"/api/qa/calls/{last.call_id}"))["integrity"]
    assert tail["first_bad"] == 3
    assert tail["message"] == "第 3 段起缺失（签封记录共 3 段，现存 2 段）"


async def test_clerks_and_terminals_get_403_on_every_qa_route(client: Client) -> None:
    qa_routes = [(m, p) for (m, p) in ROUTES if p.startswith("/api/qa/")]
    assert len(qa_routes) >= 15
    for who in ("clerk1", "terminal"):
        await login(client, who)
        for method, path in qa_routes:
            concrete = (path.replace("{call_id}", "x").replace("{access_id}", "1")
                        .replace("{flag_id}", "1").replace("{hold_id}", "1")
                        .replace("{case_no}", "20260101-ABCDEF01"))
            resp = await client.request(method, concrete, json={})
            assert resp.status == 403, (who, method, path, resp.status)

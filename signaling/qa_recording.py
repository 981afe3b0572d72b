"""One recorded call as QA sees it beside the video: the case, the verification, the scans,
the time line of the call's events, the integrity line.

The integrity line hashes the segment files (in a thread, remembered by path, size and
modification time) and checks the worker's seal with the evidence keys' public half;
`core.evidence.check_recording` decides. Nothing here serves the video itself: the media
worker renders it for the viewer.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore
from approval.tables import cases
from approval.workflow import STATUS_NAMES
from core import records
from core.call_events import CallEventKind
from core.evidence import (
    Integrity,
    IntegrityReport,
    SealFacts,
    SegmentRecord,
    check_recording,
    file_sha256,
)
from core.media_tables import media_calls, recording_segments, scans
from core.pii import mask_id_number, mask_phone
from core.qa_flags import STATE_NAMES, FlagState
from core.qa_tables import (
    call_events,
    qa_evaluations,
    qa_flags,
    recording_seals,
    retention_tombstones,
)
from core.settings import Settings
from signaling.case_http import jsonable

ROLE_NAMES = {"terminal": "申请人终端", "clerk": "坐席", "second_clerk": "协同坐席"}
END_REASONS = {"hangup": "挂断", "participant_gone": "一方掉线", "worker_stopped": "服务重启"}
_HASHES: OrderedDict[tuple[str, int, int], str] = OrderedDict()
_HASHES_MAX = 4096


def shown_case(opened: dict[str, Any]) -> dict[str, Any]:
    """An opened case as QA pages show it: ID and phone numbers masked (the export keeps them
    whole)."""
    out = {k: v for k, v in opened.items() if k not in ("state", "id_number_hash")}
    out["id_number"] = mask_id_number(str(out["id_number"]))
    out["phone"] = mask_phone(str(out["phone"]))
    shown: dict[str, Any] = jsonable(out)
    return shown


def _cached_sha256(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    found = _HASHES.get(key)
    if found is None:
        found = file_sha256(path)
        _HASHES[key] = found
        while len(_HASHES) > _HASHES_MAX:
            _HASHES.popitem(last=False)
    return found


def _inside(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) else None


async def integrity(engine: AsyncEngine, settings: Settings, call_id: str,
                    ended: bool) -> IntegrityReport:
    t = recording_segments.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.seq, t.path, t.sha256, t.prev_hash, t.chain_hash)
                                   .where(t.call_id == call_id))).all()
        seal = (await conn.execute(select(recording_seals).where(
            recording_seals.c.call_id == call_id))).mappings().first()
        gone = (await conn.execute(select(retention_tombstones).where(and_(
            retention_tombstones.c.kind == "recording",
            retention_tombstones.c.subject == call_id,
            retention_tombstones.c.state == "done")))).mappings().first()
    if gone is not None:
        day = gone["deleted_at"].astimezone().date().isoformat()
        return IntegrityReport(Integrity.DELETED, f"录像已于 {day} 按保存期限删除"
                               f"（删除前哈希 {gone['content_hash'][:16]}…）")
    root = settings.storage_root

    def hashes() -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        for r in rows:
            path = _inside(root, r.path)
            out[int(r.seq)] = None if path is None else _cached_sha256(path)
        return out

    file_hashes = await asyncio.to_thread(hashes)
    facts = None
    if seal is not None:
        keys = settings.evidence_keys
        valid = await asyncio.to_thread(keys.check, seal["content"], seal["signature"],
                                        seal["key_id"])
        facts = SealFacts(int(seal["segments"]), str(seal["final_chain_hash"]), valid)
    records_ = [SegmentRecord(int(r.seq), r.sha256, r.prev_hash, r.chain_hash) for r in rows]
    return check_recording(records_, file_hashes, facts, ended=ended)


def _offset(at: datetime | None, t0: datetime | None) -> float | None:
    if at is None or t0 is None:
        return None
    return round((at - t0).total_seconds(), 2)


def _event(at: datetime | None, t0: datetime | None, kind: str, label: str,
           **extra: Any) -> dict[str, Any]:
    return {"at": at.isoformat() if at else None, "offset_s": _offset(at, t0), "kind": kind,
            "label": label, **extra}


def timeline(call: Any, t0: datetime | None, events: list[Any], shots: list[Any],
             case: Any, flags: list[Any]) -> list[dict[str, Any]]:
    """The call's events in order, each with where it falls in the recording."""
    out = [_event(call["started_at"], t0, "placed", "通话开始")]
    for e in events:
        role = ROLE_NAMES.get(e["actor"], e["actor"])
        if e["kind"] == CallEventKind.JOINED:
            out.append(_event(e["at"], t0, "joined", f"{role}加入"))
        elif e["kind"] == CallEventKind.LEFT:
            out.append(_event(e["at"], t0, "left", f"{role}离开"))
        elif e["kind"] == CallEventKind.IDENTITY_CHECK:
            verdict = (e["detail"] or {}).get("verdict_name") or (e["detail"] or {}).get(
                "verdict", "")
            out.append(_event(e["at"], t0, "identity_check", f"身份核验 {verdict}".strip()))
        else:
            out.append(_event(e["at"], t0, str(e["kind"]), str(e["kind"])))
    for s in shots:
        out.append(_event(s["created_at"], t0, "capture", "拍摄材料", scan_id=s["scan_id"]))
    if case is not None:
        out.append(_event(case["submitted_at"], t0, "case_submitted",
                          f"提交办件 {case['case_no']}"))
    for f in flags:
        if f["at_s"] is not None and t0 is not None:
            out.append({"at": None, "offset_s": f["at_s"], "kind": "flag",
                        "label": f"问题件：{f['category']}", "flag_id": f["flag_id"]})
    if call["ended_at"] is not None:
        why = END_REASONS.get(call["end_reason"] or "", call["end_reason"] or "")
        out.append(_event(call["ended_at"], t0, "ended", f"通话结束（{why}）" if why
                          else "通话结束"))
    return sorted(out, key=lambda e: (e["offset_s"] is None, e["offset_s"] or 0.0))


async def case_of_call(engine: AsyncEngine, call_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(cases).where(cases.c.call_id == call_id)
                                   .order_by(cases.c.submitted_at.desc()).limit(1))
                ).mappings().first()


async def call_detail(engine: AsyncEngine, settings: Settings, store: CaseStore,
                      call_id: str) -> dict[str, Any] | None:
    """Everything the replay page shows beside the video, or None for no such call."""
    m, seg = media_calls, recording_segments.c
    async with engine.connect() as conn:
        call = (await conn.execute(select(m).where(m.c.call_id == call_id))).mappings().first()
        if call is None:
            return None
        segments = (await conn.execute(select(seg.seq, seg.started_at, seg.duration_s)
                                       .where(seg.call_id == call_id).order_by(seg.seq))).all()
        events = (await conn.execute(select(call_events).where(
            call_events.c.call_id == call_id).order_by(call_events.c.at))).mappings().all()
        shots = (await conn.execute(select(scans.c.scan_id, scans.c.created_at, scans.c.taken_by)
                                    .where(scans.c.call_id == call_id)
                                    .order_by(scans.c.created_at))).mappings().all()
        terminal = (await conn.execute(select(records.terminals.c.name, records.terminals.c.village)
                                       .where(records.terminals.c.terminal_id
                                              == call["terminal_id"]))).mappings().first()
        clerk_name = await conn.scalar(select(records.accounts.c.display_name).where(
            records.accounts.c.username == call["clerk_username"]))
    case = await case_of_call(engine, call_id)
    keys = [call_id] + ([case["case_no"]] if case is not None else [])
    async with engine.connect() as conn:
        flags = (await conn.execute(select(qa_flags).where(or_(
            qa_flags.c.call_id.in_(keys), qa_flags.c.case_no.in_(keys)))
            .order_by(qa_flags.c.flag_id))).mappings().all()
        evaluations = (await conn.execute(select(qa_evaluations).where(
            qa_evaluations.c.call_id == call_id).order_by(qa_evaluations.c.id))
        ).mappings().all()
    t0 = segments[0].started_at if segments else call["recording_started_at"]
    duration = sum(float(s.duration_s) for s in segments)
    if segments:
        duration = max(duration, (_offset(segments[-1].started_at, t0) or 0.0)
                       + float(segments[-1].duration_s))
    report = await integrity(engine, settings, call_id, call["state"] != "active")
    case_out = None
    if case is not None:
        case_out = shown_case(store.open_case(dict(case)))
        case_out["scan_urls"] = [f"/api/scans/{s}" for s in case["scans"]]
        case_out["status_name"] = STATUS_NAMES.get(case["status"], case["status"])
    return {
        "call": jsonable(dict(call)), "terminal": dict(terminal) if terminal else None,
        "clerk_name": clerk_name or call["clerk_username"],
        "case": case_out, "verification": case_out["verification"] if case_out else None,
        "scans": [jsonable({**dict(s), "url": f"/api/scans/{s['scan_id']}"}) for s in shots],
        "recording": {"segments": len(segments), "duration_s": round(duration, 2),
                      "started_at": t0.isoformat() if t0 else None},
        "timeline": timeline(call, t0, list(events), list(shots), case, list(flags)),
        "integrity": report.as_json(),
        "flags": [jsonable({**dict(f), "state_name": STATE_NAMES[FlagState(f["state"])]})
                  for f in flags],
        "evaluations": [jsonable(dict(e)) for e in evaluations],
    }

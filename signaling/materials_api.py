"""Materials of a call and of a case: the item's list, the scanned pages of each, reuse.

The clerk of a call sees the item's materials with the pages taken so far (a material is
ticked when it has a good page) and may re-attach a material the same applicant gave in
an earlier case, still within retention (证照重复使用): the clerk confirms, and the call gets
a scan row of its own that names where it came from, so the case still refers only to
scans of its own call. Reviewers (and whoever may see a case's scans) read a case's
materials page by page, watermarked with their own name, or as one PDF.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import insert, select

from approval.tables import cases
from core.catalogue import ItemMaterial
from core.document_tables import document_scans
from core.media_tables import scans
from core.replies import http_error
from signaling.appkeys import CLOCK, ENGINE, REDIS, SETTINGS
from signaling.audit_trail import note
from signaling.auth import Session, require_session
from signaling.case_access import may_see_scans
from signaling.case_http import body, store_of
from signaling.case_pdf import materials_pdf, page_copy
from signaling.cases_api import purpose_of, readable_case
from signaling.node import NODE
from signaling.queue_store import QueueStore

OTHER = "other"
REUSE_WITHIN = timedelta(days=90)  # scans and materials are kept 90 days (DESIGN.md)
REUSABLE_VERDICTS = ("ok",)


def material_code(name: str) -> str:
    """A stable code for an item's material: its name (the catalogue has no codes)."""
    return name[:32]


class ReuseOffersRequest(BaseModel):
    id_number: str = Field(min_length=15, max_length=24)


class ReuseRequest(BaseModel):
    scan_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def group_pages(rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Material code → its name and its pages (the latest scan of each page number)."""
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["created_at"], r["scan_id"])):
        entry = out.setdefault(r["material_code"], {"name": r["material_name"], "pages": {}})
        entry["pages"][r["page"]] = {
            "scan_id": r["scan_id"], "page": r["page"], "verdict": r["verdict"],
            "from_video": r["from_video"], "reused_from": r["reused_from"],
            "flat_width": r["flat_width"], "flat_height": r["flat_height"],
            "source_width": r["source_width"], "source_height": r["source_height"],
            "sha256": r["flat_sha256"], "original_sha256": r["original_sha256"]}
    for entry in out.values():
        entry["pages"] = [entry["pages"][p] for p in sorted(entry["pages"])]
        entry["good"] = any(p["verdict"] == "ok" for p in entry["pages"])
    return out


def material_list(item_materials: Sequence[ItemMaterial],
                  taken: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The item's materials in its order, then anything else taken (其他)."""
    listed: list[dict[str, Any]] = []
    for m in item_materials:
        code = material_code(m.name)
        got = taken.get(code, {"pages": [], "good": False})
        listed.append({"code": code, "name": m.name, "core": m.core, "pages": got["pages"],
                       "ticked": got["good"]})
    known = {x["code"] for x in listed}
    for code, got in taken.items():
        if code not in known:
            listed.append({"code": code, "name": got["name"], "core": False,
                           "pages": got["pages"], "ticked": got["good"]})
    return listed


async def _clerk_of_call(request: web.Request) -> tuple[Session, str, str]:
    """The session, the call id and its item code; 404 unless the caller is its clerk."""
    session = await require_session(request, "clerk")
    call_id = request.match_info["call_id"]
    call = await QueueStore(request.app[REDIS]).call(call_id)
    if call is None or session.who not in call.clerks():
        raise http_error(web.HTTPNotFound, "no_call", "没有这次通话")
    return session, call_id, call.item_code


async def _document_rows(request: web.Request, column: Any, values: Sequence[str]) -> list[Any]:
    if not values:
        return []
    async with request.app[ENGINE].connect() as conn:
        return list((await conn.execute(select(document_scans).where(
            column.in_(list(values))))).mappings().all())


async def call_materials(request: web.Request) -> web.Response:
    _, call_id, item_code = await _clerk_of_call(request)
    item = request.app[NODE].catalogue.get(item_code)
    rows = await _document_rows(request, document_scans.c.call_id, [call_id])
    listed = material_list(item.materials if item else [], group_pages(rows))
    return web.json_response({"call_id": call_id, "item_code": item_code, "materials": listed})


async def reuse_offers(request: web.Request) -> web.Response:
    """Good scans of this applicant's earlier cases, within retention, one per material."""
    session, call_id, _ = await _clerk_of_call(request)
    req = await body(request, ReuseOffersRequest)
    id_hash = store_of(request).pii.search_hash("id_number", req.id_number)
    since = datetime.fromtimestamp(request.app[CLOCK](), UTC) - REUSE_WITHIN
    async with request.app[ENGINE].connect() as conn:
        earlier = (await conn.execute(select(cases.c.case_no, cases.c.scans, cases.c.call_id)
                                      .where(cases.c.id_number_hash == id_hash,
                                             cases.c.submitted_at >= since,
                                             cases.c.status != "rejected")
                                      .order_by(cases.c.submitted_at.desc()).limit(20))).all()
    by_scan = {s: r.case_no for r in earlier if r.call_id != call_id for s in (r.scans or [])}
    rows = await _document_rows(request, document_scans.c.scan_id, list(by_scan))
    offers: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["created_at"], reverse=True):
        fresh = r["created_at"] >= since and r["verdict"] in REUSABLE_VERDICTS
        if fresh and (r["material_code"], r["page"]) not in offers:
            offers[(r["material_code"], r["page"])] = {
                "scan_id": r["scan_id"], "material_code": r["material_code"],
                "material_name": r["material_name"], "page": r["page"],
                "case_no": by_scan[r["scan_id"]],
                "taken_at": r["created_at"].astimezone(UTC).isoformat()}
    await note(request.app[ENGINE], session.who, "materials.reuse_offers", call_id,
               {"offers": len(offers)})
    return web.json_response({"offers": list(offers.values())})


async def reuse(request: web.Request) -> web.Response:
    """The clerk confirmed: the earlier page becomes a scan of this call (reused_from)."""
    session, call_id, _ = await _clerk_of_call(request)
    req = await body(request, ReuseRequest)
    rows = await _document_rows(request, document_scans.c.scan_id, [req.scan_id])
    offered = await _offered(request, req.scan_id)
    if not rows or not offered:
        raise http_error(web.HTTPNotFound, "no_scan", "没有可以重复使用的这份材料")
    old = dict(rows[0])
    scan_id = secrets.token_hex(12)
    async with request.app[ENGINE].begin() as conn:
        base = (await conn.execute(select(scans).where(scans.c.scan_id == old["scan_id"]))
                ).mappings().one()
        await conn.execute(insert(scans).values(
            scan_id=scan_id, call_id=call_id, taken_by=session.who, path=base["path"],
            thumb_path=base["thumb_path"], sha256=base["sha256"], width=base["width"],
            height=base["height"], sharpness=base["sharpness"]))
        await conn.execute(insert(document_scans).values(
            **{**{k: v for k, v in old.items() if k not in ("created_at",)},
               "scan_id": scan_id, "call_id": call_id, "taken_by": session.who,
               "uploaded_by": session.who, "reused_from": old["scan_id"]}))
    await note(request.app[ENGINE], session.who, "materials.reuse", call_id,
               {"scan_id": scan_id, "reused_from": old["scan_id"]})
    return web.json_response({"scan_id": scan_id, "reused_from": old["scan_id"],
                              "material_code": old["material_code"], "page": old["page"]},
                             status=201)


async def _offered(request: web.Request, scan_id: str) -> bool:
    """The scan belongs to an earlier case within retention (the clerk cannot name any)."""
    since = datetime.fromtimestamp(request.app[CLOCK](), UTC) - REUSE_WITHIN
    async with request.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(cases.c.case_no).where(
            cases.c.scans.contains([scan_id]), cases.c.submitted_at >= since).limit(1))).first()
    return row is not None


# --- a case's materials for reviewers -------------------------------------------------------


async def _case_pages(request: web.Request) -> tuple[Session, dict[str, Any], list[Any]]:
    session = await require_session(request, "clerk", "reviewer", "qa")
    case, view = await readable_case(request, session)
    if not may_see_scans(session, view):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    rows = await _document_rows(request, document_scans.c.scan_id, list(case["scans"] or []))
    return session, case, rows


async def case_materials(request: web.Request) -> web.Response:
    session, case, rows = await _case_pages(request)
    grouped = group_pages(rows)
    item = request.app[NODE].catalogue.get(case["item_code"])
    listed = [m for m in material_list(item.materials if item else [], grouped) if m["pages"]]
    return web.json_response({"case_no": case["case_no"], "materials": listed,
                              "viewer": session.display_name})


def _viewer(session: Session) -> str:
    return session.display_name or session.who


async def case_page(request: web.Request) -> web.Response:
    """One flattened page, watermarked for this case and this viewer."""
    session, case, rows = await _case_pages(request)
    purpose = purpose_of(request, session)
    row = next((r for r in rows if r["scan_id"] == request.match_info["scan_id"]), None)
    if row is None:
        raise http_error(web.HTTPNotFound, "no_scan", "没有这份材料")
    root = request.app[SETTINGS].storage_root
    copy = await asyncio.to_thread(page_copy, root, row["flat_path"], case["item_name"],
                                   _viewer(session), datetime.now(UTC))
    if copy is None:
        raise http_error(web.HTTPGone, "scan_missing", "材料文件已不在存储中")
    await note(request.app[ENGINE], session.who, "scan.read", row["scan_id"],
               {"role": session.role, "purpose": purpose, "case_no": case["case_no"]})
    return web.Response(body=copy, content_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store"})


async def case_pdf(request: web.Request) -> web.Response:
    session, case, rows = await _case_pages(request)
    purpose = purpose_of(request, session)
    if not rows:
        raise http_error(web.HTTPNotFound, "no_materials", "这件事还没有扫描的材料")
    grouped = group_pages(rows)
    item = request.app[NODE].catalogue.get(case["item_code"])
    listed = [m for m in material_list(item.materials if item else [], grouped) if m["pages"]]
    by_id = {r["scan_id"]: r for r in rows}
    pages = [(m["name"], p["page"], by_id[p["scan_id"]]["flat_path"])
             for m in listed for p in m["pages"]]
    pdf = await asyncio.to_thread(materials_pdf, request.app[SETTINGS].storage_root, pages,
                                  case["case_no"], case["item_name"], _viewer(session),
                                  datetime.now(UTC))
    await note(request.app[ENGINE], session.who, "materials.pdf", case["case_no"],
               {"role": session.role, "purpose": purpose, "pages": len(pages)})
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{case["case_no"]}-materials.pdf"'})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/calls/{call_id}/materials", call_materials)
    app.router.add_post("/api/calls/{call_id}/materials/reuse-offers", reuse_offers)
    app.router.add_post("/api/calls/{call_id}/materials/reuse", reuse)
    app.router.add_get("/api/cases/{case_no}/materials", case_materials)
    app.router.add_get("/api/cases/{case_no}/materials.pdf", case_pdf)
    app.router.add_get("/api/cases/{case_no}/materials/{scan_id}", case_page)

"""Evidence export: who may take one, what is in it, and `python -m core.audit
verify-export` passing the archive as exported and naming what was changed in it."""

from __future__ import annotations

import asyncio
import json
import sys
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore
from core import records
from core.audit import entry_hash
from core.evidence_export import verify_archive
from core.qa_tables import qa_access_log
from core.settings import ROOT, Settings
from tests.qa.conftest import Client, login, recorded


async def verify_command(path: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core.audit", "verify-export", str(path), *extra, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


def rewrite(src: Path, dst: Path, changes: dict[str, bytes | None]) -> None:
    """A copy of the archive with some members replaced (or dropped: None)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            data = changes.get(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info.filename, data)


async def test_an_export_verifies_and_every_change_to_it_is_named(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings,
        tmp_path: Path) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "qa1")
    body = {"case_no": call.case_no, "purpose": "抽查"}
    refused = await client.post("/api/qa/exports", json=body)
    assert refused.status == 403 and "投诉处理" in (await refused.json())["error"]["message"]
    resp = await client.post("/api/qa/exports", json={**body, "purpose": "投诉处理",
                                                       "purpose_text": "申请人投诉办理超时"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="evidence-{call.case_no}.zip"')
    archive = tmp_path / "evidence.zip"
    archive.write_bytes(await resp.read())
    # No copy left behind: the server removes it once the last byte is sent, which may be
    # a moment after the client has read it.
    exports = qa_settings.storage_root / "exports"
    for _ in range(50):
        if not list(exports.iterdir()):
            break
        await asyncio.sleep(0.1)
    assert list(exports.iterdir()) == []

    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
    assert {"manifest.json", "manifest.sig", "README.txt", "recording/0000.mp4",
            "recording/0002.mp4", f"scans/{call.scan_id}.png"} <= names
    assert manifest["case"]["case_no"] == call.case_no and manifest["purpose"] == "投诉处理"
    assert manifest["verification"]["verdict"] == "通过"
    assert [e["action"] for e in manifest["audit"]] == ["case.submit", "qa.export"]
    assert manifest["recording"]["seal"]["key_id"] == "evidence-1"
    _, problems = verify_archive(archive, entry_hash)
    assert problems == []
    code, out = await verify_command(archive)
    assert code == 0 and "校验通过" in out and "录像 3 段完整且与签封一致" in out
    trusted = qa_settings.evidence_key_dir
    assert (await verify_command(archive, "--keys", str(trusted)))[0] == 0
    stranger = tmp_path / "stranger-keys"
    stranger.mkdir()
    code, out = await verify_command(archive, "--keys", str(stranger))
    assert code == 1 and "密钥不受信任" in out

    with zipfile.ZipFile(archive) as z:
        segment = bytearray(z.read("recording/0001.mp4"))
    segment[len(segment) // 2] ^= 0x01
    changed = tmp_path / "changed-byte.zip"
    rewrite(archive, changed, {"recording/0001.mp4": bytes(segment)})
    code, out = await verify_command(changed)
    assert code == 1 and "文件 recording/0001.mp4 与清单中的哈希不符" in out

    dropped = tmp_path / "dropped-tail.zip"
    edited = {**manifest, "recording": {**manifest["recording"],
                                        "segments": manifest["recording"]["segments"][:2]}}
    rewrite(archive, dropped, {"manifest.json": json.dumps(edited).encode(),
                               "recording/0002.mp4": None})
    _, problems = verify_archive(dropped, entry_hash)
    assert "清单签名无效或密钥不受信任：证据包可能被改动" in problems
    assert any("签封记录 3 段，证据包内 2 段" in p for p in problems)

    entries = manifest["audit"]
    forged = {**manifest, "audit": [{**entries[0], "actor": "someone-else"}, *entries[1:]]}
    rewritten = tmp_path / "audit-edited.zip"
    rewrite(archive, rewritten, {"manifest.json": json.dumps(forged).encode()})
    _, problems = verify_archive(rewritten, entry_hash)
    assert f"审计记录 id={entries[0]['id']}（case.submit）的哈希与内容不符" in problems

    async with engine.connect() as conn:
        logged = (await conn.execute(select(qa_access_log.c.kind, qa_access_log.c.purpose)
                                     .where(qa_access_log.c.case_no == call.case_no))).all()
        sealed = (await conn.execute(select(records.audit_log.c.after).where(
            records.audit_log.c.action == "qa.export.archive"))).scalar_one()
    assert [tuple(r) for r in logged] == [("export", "投诉处理")]
    assert len(sealed["sha256"]) == 64 and sealed["files"] == 4


async def test_an_admin_may_export_for_any_purpose(
        client: Client, engine: AsyncEngine, store: CaseStore, qa_settings: Settings) -> None:
    call = await recorded(engine, qa_settings, store)
    await login(client, "admin")
    resp = await client.post("/api/qa/exports", json={"case_no": call.case_no,
                                                       "purpose": "抽查"})
    assert resp.status == 200
    await login(client, "clerk1")
    assert (await client.post("/api/qa/exports", json={"case_no": call.case_no,
                                                        "purpose": "投诉处理"})).status == 403

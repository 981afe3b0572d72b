"""Evidence exports: one ZIP archive per case, and the check anyone can run on it.

The archive holds the original recording segments, the scans, the case record, the
verification, the case's audit entries with their hashes, the recording's seal, the
public keys, and `manifest.json` naming every file with its SHA-256, signed with the
evidence key (`manifest.sig`). `python -m core.audit verify-export FILE [--keys DIR]`
checks the signature (against the archive's own keys, or against the trusted public keys
in DIR), every file's hash, the recording's chain and seal, and every audit entry's hash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.evidence import GENESIS, chain_hash
from core.signing import EvidenceKeys, canonical, check_with_pem, fingerprint

FORMAT = "vwindow-evidence-1"
README = """远程虚拟窗口 证据包

本压缩包内含：办件记录、身份核验结果、扫描件原件、通话录像原始分段、该办件的审计日志及签名。
校验方法（在任一装有本系统的电脑上）：

    python -m core.audit verify-export 本文件.zip [--keys 公钥目录]

校验内容：清单签名、每个文件的 SHA-256、录像哈希链与签封、每条审计记录的哈希。
公钥指纹见 manifest.json 的 public_keys，请与发布的指纹核对。
"""

# (id, at, actor, action, subject, before, after, prev_hash) → the entry's hash
EntryHash = Callable[[int, datetime, str, str, str, Any, Any, str], str]


@dataclass
class ExportFile:
    name: str  # inside the archive
    source: Path


@dataclass
class ExportBundle:
    """What the archive says and which files it carries (gathered by the caller)."""

    case_no: str
    record: dict[str, Any]  # case, verification, recording rows and seal, audit, ...
    files: list[ExportFile] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_archive(bundle: ExportBundle, out: Path, keys: EvidenceKeys) -> str:
    """Write the archive to `out`; returns its SHA-256 (for the access log)."""
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for f in bundle.files:
            digest = hashlib.sha256()
            with f.source.open("rb") as src, archive.open(f.name, "w") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
            hashes[f.name] = digest.hexdigest()
        keys.current()  # the signing key exists before its public half is named
        used = {keys.current_id} | _key_ids(bundle.record)
        public = {k: pem for k in sorted(used) if (pem := keys.public(k)) is not None}
        manifest = {"format": FORMAT, "case_no": bundle.case_no, **bundle.record,
                    "files": hashes,
                    "public_keys": {k: {"pem": pem, "fingerprint": fingerprint(pem)}
                                    for k, pem in public.items()}}
        text = canonical(manifest)
        signature, key_id = keys.sign(text)
        archive.writestr("manifest.json", text)
        archive.writestr("manifest.sig", canonical({"key_id": key_id, "signature": signature}))
        archive.writestr("README.txt", README)
    return _file_sha256(out)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key_ids(record: dict[str, Any]) -> set[str]:
    seal = (record.get("recording") or {}).get("seal")
    ids = {seal["key_id"]} if seal else set()
    return ids | {cp["key_id"] for cp in record.get("checkpoints", [])}


# --- checking ---------------------------------------------------------------------------


def _trusted_pem(manifest: dict[str, Any], key_id: str, trusted: Path | None) -> str | None:
    if trusted is not None:
        path = trusted / f"{key_id}.pub.pem"
        return path.read_text() if path.is_file() else None
    entry = manifest.get("public_keys", {}).get(key_id)
    return None if entry is None else str(entry["pem"])


def _check_recording(manifest: dict[str, Any], names: dict[str, str],
                     trusted: Path | None) -> list[str]:
    rec = manifest.get("recording")
    if not rec:
        return []
    problems: list[str] = []
    prev = GENESIS
    segments = sorted(rec["segments"], key=lambda s: s["seq"])
    for n, seg in enumerate(segments, 1):
        if seg["seq"] != n - 1:
            problems.append(f"录像第 {n} 段缺失")
            break
        if names.get(seg["file"]) != seg["sha256"]:
            problems.append(f"录像第 {n} 段文件与记录的哈希不符")
        if seg["prev_hash"] != prev or chain_hash(prev, seg["sha256"]) != seg["chain_hash"]:
            problems.append(f"录像第 {n} 段的哈希链断开")
            break
        prev = seg["chain_hash"]
    seal = rec.get("seal")
    if seal is None:
        problems.append("录像没有结束签封，无法证明结尾完整")
        return problems
    pem = _trusted_pem(manifest, seal["key_id"], trusted)
    if pem is None or not check_with_pem(pem, seal["content"], seal["signature"]):
        problems.append("录像签封的签名无效或密钥不受信任")
        return problems
    signed = json.loads(seal["content"])
    if signed.get("call_id") != rec["call_id"] or signed.get("segments") != len(segments) \
            or signed.get("final_chain_hash") != prev:
        problems.append(f"录像与签封不符（签封记录 {signed.get('segments')} 段，"
                        f"证据包内 {len(segments)} 段）")
    return problems


def _check_audit(manifest: dict[str, Any], entry_hash: EntryHash) -> list[str]:
    problems = []
    for e in manifest.get("audit", []):
        at = datetime.fromisoformat(e["at"])
        h = entry_hash(e["id"], at, e["actor"], e["action"], e["subject"], e["before"],
                       e["after"], e["prev_hash"])
        if h != e["entry_hash"]:
            problems.append(f"审计记录 id={e['id']}（{e['action']}）的哈希与内容不符")
    return problems


def verify_archive(path: Path, entry_hash: EntryHash,
                   trusted: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """(the manifest, the problems found: empty when the archive holds)."""
    with zipfile.ZipFile(path) as archive:
        text = archive.read("manifest.json").decode()
        sig = json.loads(archive.read("manifest.sig"))
        manifest: dict[str, Any] = json.loads(text)
        actual = {}
        for name in manifest.get("files", {}):
            try:
                actual[name] = _sha256(archive.read(name))
            except KeyError:
                actual[name] = ""
    problems: list[str] = []
    if manifest.get("format") != FORMAT:
        problems.append("不是本系统的证据包格式")
    pem = _trusted_pem(manifest, sig["key_id"], trusted)
    if pem is None or not check_with_pem(pem, text, sig["signature"]):
        problems.append("清单签名无效或密钥不受信任：证据包可能被改动")
    for name, want in manifest.get("files", {}).items():
        if actual.get(name) != want:
            problems.append(f"文件 {name} " + ("缺失" if not actual.get(name)
                                              else "与清单中的哈希不符"))
    problems += _check_recording(manifest, actual, trusted)
    problems += _check_audit(manifest, entry_hash)
    return manifest, problems


def verify_export_command(argv: list[str], entry_hash: EntryHash) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.audit verify-export")
    parser.add_argument("file", type=Path)
    parser.add_argument("--keys", type=Path, default=None,
                        help="folder of trusted public keys (<key id>.pub.pem)")
    args = parser.parse_args(argv)
    try:
        manifest, problems = verify_archive(args.file, entry_hash, args.keys)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"无法读取证据包 {args.file}：{exc}")
        return 2
    out = io.StringIO()
    print(f"证据包：办件 {manifest.get('case_no')}，导出于 {manifest.get('exported_at')}，"
          f"导出人 {manifest.get('exported_by')}", file=out)
    for key_id, entry in manifest.get("public_keys", {}).items():
        print(f"签名密钥 {key_id} 指纹 {entry.get('fingerprint')}", file=out)
    if problems:
        print("校验未通过：", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
    else:
        rec = manifest.get("recording") or {}
        print(f"校验通过：{len(manifest.get('files', {}))} 个文件，录像 "
              f"{len(rec.get('segments', []))} 段完整且与签封一致，"
              f"{len(manifest.get('audit', []))} 条审计记录哈希正确", file=out)
    print(out.getvalue(), end="")
    return 1 if problems else 0

"""A recording as evidence: its segments' hash chain, the worker's seal of the chain's end,
and the integrity verdict QA sees.

Segment n's chain hash is SHA-256(chain_{n-1} ‖ sha256_n), starting from GENESIS. When a
call ends, its worker signs (call, segment count, final chain hash): a removed middle
segment breaks the chain, a removed tail no longer matches the seal. Pure functions; the
caller hashes the files and checks the seal's signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def chain_hash(prev_hash: str, sha256: str) -> str:
    """Segment n's chain hash: SHA-256 over the previous chain hash and this file's hash."""
    return hashlib.sha256(f"{prev_hash}{sha256}".encode("ascii")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal_content(call_id: str, segments: int, final_chain_hash: str,
                 ended_at: str) -> dict[str, Any]:
    """What the worker signs at the end of a call (ended_at: ISO time, UTC)."""
    return {"kind": "recording-seal", "call_id": call_id, "segments": segments,
            "final_chain_hash": final_chain_hash, "ended_at": ended_at}


@dataclass(frozen=True)
class SegmentRecord:
    seq: int
    sha256: str
    prev_hash: str
    chain_hash: str


@dataclass(frozen=True)
class SealFacts:
    segments: int
    final_chain_hash: str
    signature_valid: bool


class Integrity(StrEnum):
    INTACT = "intact"  # chain whole, files unchanged, the seal matches
    BROKEN = "broken"  # something changed or is missing: `first_bad` names it
    UNSEALED = "unsealed"  # nothing wrong found, but no seal proves the tail is whole
    DELETED = "deleted"  # removed by the retention rules (a tombstone says when)
    EMPTY = "empty"  # never recorded


@dataclass(frozen=True)
class IntegrityReport:
    state: Integrity
    message: str  # for the person, in plain words
    first_bad: int | None = None  # the 1-based number of the first broken segment
    segments: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "message": self.message,
                "first_bad": self.first_bad, "segments": self.segments,
                "ok": self.state == Integrity.INTACT}


def _broken(n: int, why: str, count: int) -> IntegrityReport:
    return IntegrityReport(Integrity.BROKEN, f"第 {n} 段{why}", n, count)


def check_recording(rows: list[SegmentRecord], file_hashes: dict[int, str | None],
                    seal: SealFacts | None, *, ended: bool) -> IntegrityReport:
    """The verdict over the segment rows (any order), the files' actual SHA-256 by seq
    (None: the file is missing) and the seal, if the worker wrote one."""
    ordered = sorted(rows, key=lambda r: r.seq)
    count = len(ordered)
    if not ordered and seal is None:
        return IntegrityReport(Integrity.EMPTY, "这次通话没有录像")
    prev = GENESIS
    for expected, row in enumerate(ordered):
        if row.seq != expected:
            return _broken(expected + 1, "缺失（录像记录被删除）", count)
        if row.prev_hash != prev or chain_hash(prev, row.sha256) != row.chain_hash:
            return _broken(expected + 1, "的哈希链记录被改动", count)
        actual = file_hashes.get(row.seq)
        if actual is None:
            return _broken(expected + 1, "的文件缺失", count)
        if actual != row.sha256:
            return _broken(expected + 1, "内容被改动（与记录的哈希不符）", count)
        prev = row.chain_hash
    if seal is None:
        if not ended:
            return IntegrityReport(Integrity.UNSEALED, "通话仍在进行，录像尚未签封",
                                   segments=count)
        return IntegrityReport(Integrity.UNSEALED, "录像各段完整，但缺少结束签封"
                               "（通话可能异常中断），无法证明结尾完整", segments=count)
    if not seal.signature_valid:
        return IntegrityReport(Integrity.BROKEN, "录像签封的签名无效", None, count)
    if seal.segments > count:
        return _broken(count + 1, f"起缺失（签封记录共 {seal.segments} 段，现存 {count} 段）",
                       count)
    if seal.segments != count or seal.final_chain_hash != prev:
        return IntegrityReport(Integrity.BROKEN, "录像结尾与签封不符", count, count)
    return IntegrityReport(Integrity.INTACT, "录像完整，未被篡改", None, count)

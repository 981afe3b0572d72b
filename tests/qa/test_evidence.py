"""The integrity line (pure): an intact recording, and each kind of tampering named."""

from __future__ import annotations

import hashlib

from core.evidence import (
    GENESIS,
    Integrity,
    SealFacts,
    SegmentRecord,
    chain_hash,
    check_recording,
)


def recording(n: int) -> tuple[list[SegmentRecord], dict[int, str | None], SealFacts]:
    rows: list[SegmentRecord] = []
    files: dict[int, str | None] = {}
    prev = GENESIS
    for seq in range(n):
        sha = hashlib.sha256(f"segment {seq}".encode()).hexdigest()
        chained = chain_hash(prev, sha)
        rows.append(SegmentRecord(seq, sha, prev, chained))
        files[seq] = sha
        prev = chained
    return rows, files, SealFacts(n, prev, True)


def test_an_untouched_recording_is_intact() -> None:
    rows, files, seal = recording(4)
    report = check_recording(rows, files, seal, ended=True)
    assert report.state == Integrity.INTACT and report.message == "录像完整，未被篡改"
    assert report.as_json()["ok"] and report.segments == 4


def test_a_changed_byte_names_its_segment() -> None:
    rows, files, seal = recording(4)
    files[2] = hashlib.sha256(b"one byte changed").hexdigest()
    report = check_recording(rows, files, seal, ended=True)
    assert report.state == Integrity.BROKEN and report.first_bad == 3
    assert report.message == "第 3 段内容被改动（与记录的哈希不符）"


def test_a_deleted_middle_segment_is_named() -> None:
    rows, files, seal = recording(4)
    del rows[1], files[1]  # its file and its row gone
    report = check_recording(rows, files, seal, ended=True)
    assert report.state == Integrity.BROKEN and report.first_bad == 2
    assert "第 2 段缺失" in report.message
    rows, files, seal = recording(4)
    files[1] = None  # only the file gone
    assert check_recording(rows, files, seal, ended=True).message == "第 2 段的文件缺失"


def test_a_deleted_last_segment_is_caught_by_the_seal() -> None:
    rows, files, seal = recording(4)
    del rows[3], files[3]
    report = check_recording(rows, files, seal, ended=True)
    assert report.state == Integrity.BROKEN and report.first_bad == 4
    assert "签封记录共 4 段，现存 3 段" in report.message
    # Without the seal the same cut would pass unnoticed: that is what the seal is for.
    unsealed = check_recording(rows, files, None, ended=True)
    assert unsealed.state == Integrity.UNSEALED and "无法证明结尾完整" in unsealed.message


def test_an_edited_chain_row_or_a_forged_seal_is_named() -> None:
    rows, files, seal = recording(3)
    rows[1] = SegmentRecord(1, rows[1].sha256, rows[1].prev_hash, "f" * 64)
    assert check_recording(rows, files, seal, ended=True).message == "第 2 段的哈希链记录被改动"
    rows, files, seal = recording(3)
    forged = SealFacts(3, seal.final_chain_hash, signature_valid=False)
    assert check_recording(rows, files, forged, ended=True).message == "录像签封的签名无效"


def test_a_call_still_running_is_not_called_broken() -> None:
    rows, files, _ = recording(2)
    report = check_recording(rows, files, None, ended=False)
    assert report.state == Integrity.UNSEALED and "尚未签封" in report.message
    assert check_recording([], {}, None, ended=True).state == Integrity.EMPTY

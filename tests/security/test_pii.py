"""Personal data at rest and in logs (issue 16, item 13)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.logs import JsonFormatter
from core.pii import (
    PiiKeyError,
    PiiKeys,
    add_enc_key,
    mask_id_number,
    mask_phone,
    mask_text,
    new_key_file,
)

ID = "420115196503120027"


def test_values_open_only_in_their_place_and_survive_a_key_rotation(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    new_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        new_key_file(path)  # never overwritten: that would lose every stored number
    keys = PiiKeys.load(path)
    sealed = keys.encrypt(ID, "cases.id_number:C1")
    assert ID not in sealed and sealed.startswith("k1:")
    assert keys.decrypt(sealed, "cases.id_number:C1") == ID
    with pytest.raises(PiiKeyError):
        keys.decrypt(sealed, "cases.id_number:C2")  # moved to another row
    assert add_enc_key(path) == "k2"
    rotated = PiiKeys.load(path)
    assert rotated.decrypt(sealed, "cases.id_number:C1") == ID
    assert rotated.encrypt(ID, "x").startswith("k2:")
    # The search hash is keyed, stable across rotation, and ignores case and spaces.
    assert rotated.search_hash("id_number", ID) == keys.search_hash("id_number", f" {ID} ")
    assert keys.search_hash("id_number", "42011519650312002x") == \
        keys.search_hash("id_number", "42011519650312002X")
    other = tmp_path / "other.key"
    new_key_file(other)
    assert PiiKeys.load(other).search_hash("id_number", ID) != keys.search_hash("id_number", ID)


def test_masks_keep_the_first_six_and_last_four() -> None:
    assert mask_id_number(ID) == "420115********0027"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_text(f"applicant {ID} phone 13800138000") == \
        "applicant 420115********0027 phone 138****8000"


def test_a_log_line_never_carries_a_whole_id_or_phone_number() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "case for %s", (ID,), None)
    record.phone = "13800138000"
    line = JsonFormatter().format(record)
    assert ID not in line and "13800138000" not in line
    assert "420115********0027" in line and "138****8000" in line

"""ID numbers: what an operator sees when an OCR'd or typed number is checked."""

from __future__ import annotations

from datetime import date

import pytest

from verify.idnumber import check_digit, check_id_number, with_check_digit

TODAY = date(2026, 11, 25)
VALID = "11010519491231002X"  # the example from GB 11643-1999


def test_standard_example_is_valid_with_birth_date() -> None:
    result = check_id_number(VALID, TODAY)
    assert result.valid
    assert result.reason == ""
    assert result.birth_date == date(1949, 12, 31)
    assert result.province == "北京"


def test_lowercase_x_and_spaces_are_normalized() -> None:
    result = check_id_number(" 110105 19491231 002x ", TODAY)
    assert result.valid
    assert result.normalized == VALID


def test_full_width_digits_from_ocr_are_accepted() -> None:
    full = VALID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert check_id_number(full, TODAY).valid


def test_wrong_checksum_names_the_expected_digit() -> None:
    result = check_id_number("110105194912310021", TODAY)
    assert not result.valid
    assert "校验码" in result.reason
    assert "X" in result.reason


@pytest.mark.parametrize("raw", ["11010519491231002", "11010519491231002X1", ""])
def test_wrong_length(raw: str) -> None:
    result = check_id_number(raw, TODAY)
    assert not result.valid
    assert "18位" in result.reason


@pytest.mark.parametrize("birth", ["19490230", "19491301", "20261231", "18991231"])
def test_impossible_or_future_birth_date(birth: str) -> None:
    number = with_check_digit("110105" + birth + "002")
    result = check_id_number(number, TODAY)
    assert not result.valid
    assert "出生日期" in result.reason


def test_unknown_region_prefix() -> None:
    result = check_id_number(with_check_digit("99010519491231002"), TODAY)
    assert not result.valid
    assert "地区代码" in result.reason


def test_letters_inside_the_body_are_rejected() -> None:
    result = check_id_number("1101051949123100AX", TODAY)
    assert not result.valid
    assert "数字" in result.reason


def test_check_digit_covers_all_remainders() -> None:
    seen = {check_digit(f"{n:017d}") for n in range(11010519491231000, 11010519491231200)}
    assert seen == set("0123456789X")

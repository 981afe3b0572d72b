"""ID number reading: exact, or reported unreadable / invalid; never a wrong valid number."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from testkit.synth_doc import make_frame, today
from testkit.synth_id import CardFields, render_card
from verify.document_detect import detect_document, scan
from verify.id_ocr import read_id_number


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_number_on_a_good_card_frame_is_read_exactly(seed: int, faces: Path) -> None:
    f = make_frame(np.random.default_rng(seed), "id_card", "good", faces)
    doc = detect_document(f.image)
    assert doc is not None
    reading = read_id_number(scan(f.image, doc), today())
    assert reading.status == "valid"
    assert reading.number == f.id_number
    assert 0.5 < reading.confidence <= 1.0


def test_upside_down_card_is_read_too(faces: Path) -> None:
    f = make_frame(np.random.default_rng(44), "id_card", "good", faces)
    doc = detect_document(f.image)
    assert doc is not None
    flat = scan(f.image, doc)
    reading = read_id_number(np.ascontiguousarray(flat[::-1, ::-1]), today())
    assert reading.number == f.id_number


def test_blurred_card_is_unreadable_not_guessed(faces: Path) -> None:
    f = make_frame(np.random.default_rng(45), "id_card", "good", faces)
    doc = detect_document(f.image)
    assert doc is not None
    smeared = np.asarray(cv2.GaussianBlur(scan(f.image, doc), (0, 0), 9), np.uint8)
    reading = read_id_number(smeared, today())
    assert reading.status in {"unreadable", "invalid"}
    assert reading.number is None
    assert "人工核对" in reading.reason


def test_number_with_a_wrong_check_digit_is_reported_invalid() -> None:
    bad = "11010519800101001" + "5"  # the right check character is X
    card = np.ascontiguousarray(render_card(None, CardFields(number=bad))[..., ::-1])
    reading = read_id_number(card, today())
    assert reading.status == "invalid"
    assert reading.number is None
    assert "校验码" in reading.reason

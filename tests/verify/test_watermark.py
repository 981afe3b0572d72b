"""Watermarked copies: the words are on every copy, the original stays as it was."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from verify.watermark import make_copy, scans_pdf, watermark_image, watermark_text

DAY = date(2026, 11, 25)


def encoded_photo(faces: Path, name: str = "obama.jpg") -> bytes:
    return (faces / name).read_bytes()


def test_text_names_the_item_and_the_date() -> None:
    assert watermark_text("农村危房改造", DAY) == "仅供办理农村危房改造使用，他用无效 2026-11-25"


def test_copy_is_marked_all_over_and_the_original_is_untouched(faces: Path) -> None:
    original = encoded_photo(faces)
    before = hashlib.sha256(original).hexdigest()
    copy = make_copy(original, "农村危房改造", DAY)
    assert copy.original_sha256 == before == hashlib.sha256(original).hexdigest()
    assert copy.sha256 == hashlib.sha256(copy.jpeg).hexdigest() != before
    src = np.asarray(cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR))
    out = np.asarray(cv2.imdecode(np.frombuffer(copy.jpeg, np.uint8), cv2.IMREAD_COLOR))
    assert out.shape == src.shape
    # marked in every quarter of the image, so cropping cannot remove it
    diff = np.abs(out.astype(int) - src.astype(int)).sum(axis=2) > 40
    h, w = diff.shape
    for part in (
        diff[: h // 2, : w // 2],
        diff[: h // 2, w // 2 :],
        diff[h // 2 :, : w // 2],
        diff[h // 2 :, w // 2 :],
    ):
        assert part.mean() > 0.02


def test_blank_page_shows_the_watermark_diagonally() -> None:
    page = np.full((600, 800, 3), 255, np.uint8)
    marked = watermark_image(page, "社会救助", DAY)
    ink = (marked.sum(axis=2) < 700).astype(np.uint8)
    assert 0.03 < ink.mean() < 0.5
    ys, xs = np.nonzero(ink)
    slope = np.polyfit(xs, ys, 1)[0]  # rows of text run up to the right at about 30 degrees
    assert slope < 0


def test_pdf_has_one_watermarked_page_per_scan(faces: Path) -> None:
    scans = [encoded_photo(faces, n) for n in ("obama.jpg", "biden.jpg", "obama2.jpg")]
    pdf = scans_pdf(scans, "农村危房改造", DAY)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 3
    for s in scans:
        assert hashlib.sha256(s).hexdigest().encode() in pdf
    assert scans_pdf(scans, "农村危房改造", DAY) == pdf  # same scans, same file


def test_the_viewer_is_a_line_of_its_own_under_the_item_words() -> None:
    from datetime import UTC, datetime

    from signaling.case_pdf import viewer_line

    at = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    line = viewer_line("王芳", at)
    assert line.startswith("王芳 查阅 ") and at.astimezone().strftime("%H:%M") in line
    page = np.full((600, 800, 3), 255, np.uint8)
    _, png = cv2.imencode(".png", page)
    copy = make_copy(bytes(png), "社会救助", DAY, line)
    item_line, reader = copy.text.split("\n")
    assert item_line == watermark_text("社会救助", DAY)  # the item's words unchanged
    assert reader == line
    plain = watermark_image(page, "社会救助", DAY)
    named = watermark_image(page, "社会救助", DAY, line)
    assert (named.sum(axis=2) < 700).mean() > (plain.sum(axis=2) < 700).mean()

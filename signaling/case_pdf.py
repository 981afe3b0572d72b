"""A case's materials as a reviewer reads them: each flattened page watermarked for the case
and the viewer, and one PDF of all of them (fpdf2, already used for certificates).

Runs in a thread (decode, watermark, encode). Files are found under the storage root by the
paths the worker recorded, never by anything a request says.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf import FPDF
from PIL import Image

from verify.watermark import FONT_PATH, make_copy, sha256

PAGE_W, PAGE_H, MARGIN, CAPTION = 210.0, 297.0, 8.0, 8.0


def viewer_line(viewer: str, at: datetime) -> str:
    """The watermark's second line: who looks at it and when (a leak names its reader);
    the item's line above it stays the usual "仅供办理××使用"."""
    return f"{viewer} 查阅 {at.astimezone():%Y-%m-%d %H:%M}"


def _inside(root: Path, relative: str) -> Path | None:
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


def page_copy(root: Path, relative: str, item: str, viewer: str,
              at: datetime) -> bytes | None:
    """The watermarked JPEG of one stored page, or None when its file is gone."""
    path = _inside(root, relative)
    if path is None:
        return None
    return make_copy(path.read_bytes(), item, at.astimezone().date(),
                     viewer_line(viewer, at)).jpeg


def materials_pdf(root: Path, pages: Sequence[tuple[str, int, str]], case_no: str, item: str,
                  viewer: str, at: datetime) -> bytes:
    """One A4 page per scanned page (material name and page number above it), watermarked;
    the originals' SHA-256 in the keywords. A missing file gets a page that says so."""
    day = at.astimezone().date()
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("cjk", fname=str(FONT_PATH))
    pdf.set_title(f"{case_no} 材料")
    pdf.set_creation_date(datetime.combine(day, time(), tzinfo=UTC))
    hashes: list[str] = []
    for name, number, relative in pages:
        pdf.add_page()
        pdf.set_font("cjk", size=11)
        pdf.set_xy(MARGIN, MARGIN)
        pdf.cell(0, 6, f"{case_no}  {name}  第{number}页  {viewer_line(viewer, at)}")
        path = _inside(root, relative)
        if path is None:
            pdf.set_xy(MARGIN, MARGIN + CAPTION + 4)
            pdf.cell(0, 6, "（材料文件已不在存储中）")
            continue
        original = path.read_bytes()
        hashes.append(sha256(original))
        copy = make_copy(original, item, day, viewer_line(viewer, at))
        with Image.open(io.BytesIO(copy.jpeg)) as img:
            iw, ih = img.size
        top = MARGIN + CAPTION
        scale = min((PAGE_W - 2 * MARGIN) / iw, (PAGE_H - top - MARGIN) / ih)
        w, h = iw * scale, ih * scale
        pdf.image(io.BytesIO(copy.jpeg), x=(PAGE_W - w) / 2, y=top, w=w, h=h)
    pdf.set_keywords(" ".join(f"sha256:{h}" for h in hashes))
    return bytes(pdf.output())

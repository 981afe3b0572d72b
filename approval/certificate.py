"""Certificate content (what the seal signs) and its printable PDF with seal image and QR code."""

from __future__ import annotations

import io
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import qrcode
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from core.pii import mask_id_number


def content(certificate_no: str, case_no: str, item_code: str, item_name: str,
            applicant_name: str, id_number: str, issuer: str, issued_at: datetime,
            key_id: str) -> dict[str, Any]:
    return {
        "certificate_no": certificate_no, "case_no": case_no, "item_code": item_code,
        "item_name": item_name, "applicant": applicant_name,
        "id_number": mask_id_number(id_number), "issuer": issuer,
        "issued_at": issued_at.isoformat(timespec="seconds"), "key_id": key_id,
    }


def seal_image(issuer: str, font_path: Path, size: int = 400) -> Image.Image:
    """A red round seal: ring, star and the issuer's name along the top arc."""
    img = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    red = (200, 16, 16, 255)
    c, r = size / 2, size / 2 - 8
    draw.ellipse((c - r, c - r, c + r, c + r), outline=red, width=int(size * 0.03))
    star = []
    for i in range(10):
        rad = (size * 0.16) if i % 2 == 0 else (size * 0.065)
        a = -math.pi / 2 + i * math.pi / 5
        star.append((c + rad * math.cos(a), c + rad * math.sin(a)))
    draw.polygon(star, fill=red)
    font = ImageFont.truetype(str(font_path), int(size * 0.09))
    n = len(issuer)
    span = math.radians(240)
    for i, ch in enumerate(issuer):
        a = -math.pi / 2 - span / 2 + span * (i + 0.5) / max(n, 1)
        x, y = c + (r * 0.74) * math.cos(a), c + (r * 0.74) * math.sin(a)
        glyph = Image.new("RGBA", (int(size * 0.12), int(size * 0.12)), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((glyph.width / 2, glyph.height / 2), ch, font=font,
                                   fill=red, anchor="mm")
        glyph = glyph.rotate(-math.degrees(a) - 90, resample=Image.Resampling.BICUBIC)
        img.alpha_composite(glyph, (int(x - glyph.width / 2), int(y - glyph.height / 2)))
    return img


def qr_image(url: str) -> Image.Image:
    qr = qrcode.QRCode(border=2, box_size=8)
    qr.add_data(url)
    qr.make(fit=True)
    image: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("RGB")


def render_pdf(fields: dict[str, Any], signature: str, verify_url: str, font_path: Path,
               status_note: str = "") -> bytes:
    """An A5 certificate the village terminal prints."""
    pdf = FPDF(format=(148, 210))  # A5 in mm
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.add_font("cjk", fname=str(font_path))
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 14, "办理结果告知书（电子证照）", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    rows = [("证照编号", fields["certificate_no"]), ("办件编号", fields["case_no"]),
            ("事项名称", fields["item_name"]), ("申请人", fields["applicant"]),
            ("身份证号", fields["id_number"]), ("办理结果", "准予办理"),
            ("签发机关", fields["issuer"]), ("签发时间", fields["issued_at"]),
            ("签章密钥", fields["key_id"])]
    for label, value in rows:
        pdf.cell(28, 9, label + "：")
        pdf.multi_cell(0, 9, str(value), new_x="LMARGIN", new_y="NEXT")
    if status_note:
        pdf.set_text_color(200, 16, 16)
        pdf.cell(0, 9, status_note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.image(seal_image(fields["issuer"], font_path), x=78, y=118, w=48)
    pdf.image(qr_image(verify_url), x=14, y=140, w=36)
    pdf.set_font("cjk", size=7)
    pdf.set_xy(14, 177)
    pdf.multi_cell(120, 4, "扫码核验真伪：" + verify_url + "\n电子签章(Ed25519)：" + signature)
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()

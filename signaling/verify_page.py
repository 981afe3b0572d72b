"""The public page a certificate's QR code opens: valid, revoked or forged, in plain words.

Rendered on the server from `web/verify/page.html`, every value HTML-escaped, so a
phone without JavaScript shows it too. It shows only what a check needs: never the case
number; the applicant's name (masked) only with the QR's signature parameter.
"""

from __future__ import annotations

import html
from functools import lru_cache
from string import Template

from aiohttp import web

from core.settings import ROOT
from signaling.certificates_api import check_certificate, public_fields

PAGE = ROOT / "web" / "verify" / "page.html"
VERDICT_TEXT = {"valid": ("有效", "该证照由签发机关电子签章，内容未被篡改。"),
                "revoked": ("已撤销", "该证照曾经签发，现已被撤销，不再有效。"),
                "forged": ("无效（疑似伪造）", "未找到该证照，或其内容与电子签章不符。")}
FIELDS = (("证照编号", "certificate_no"), ("事项", "item_name"), ("申请人", "applicant"),
          ("身份证号", "id_number"), ("签发机关", "issuer"), ("签发时间", "issued_at"))


@lru_cache(maxsize=1)
def _template() -> Template:
    return Template(PAGE.read_text(encoding="utf-8"))


async def verify_page(request: web.Request) -> web.Response:
    result, row = await check_certificate(request)
    title, text = VERDICT_TEXT[result]
    rows = ""
    fields = public_fields(row, result, request.query.get("s"))
    if fields is not None:
        rows = "".join(f"<tr><th>{label}</th><td>{html.escape(fields[key])}</td></tr>"
                       for label, key in FIELDS if key in fields)
    page = _template().substitute(verdict=result, title=title, text=text, rows=rows)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/verify/{certificate}", verify_page)

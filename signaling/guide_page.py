"""办事指南: a plain page per service item (what to bring, the steps, the time limit, the
fees) at `/guide/{code}`, open to anyone (an applicant's phone), and its QR code
(`/api/guide/{code}/qr.svg`, drawn here with `qrcode`) that the kiosk shows on the
materials screen so the list can be taken home.
"""

from __future__ import annotations

import asyncio
import io
from html import escape

from aiohttp import web

from core.catalogue import ServiceItem
from core.replies import http_error
from signaling.appkeys import SETTINGS
from signaling.node import NODE

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · 办事指南</title><link rel="stylesheet" href="/web/guide/guide.css"></head>
<body><main>
<p class="kicker">办事指南</p><h1>{name}</h1><p class="plain">{plain}</p>
<h2>要带的材料</h2><ul class="materials">{materials}</ul>
<h2>怎么办</h2><ol>{steps}</ol>
<h2>多久办好</h2><p>材料齐全后 {days} 个工作日内办结（{department}）。</p>
<h2>收费</h2><p>{fees}</p>
{notes}
<p class="small">到村便民服务点，在屏幕上选“{plain}”，排队后和工作人员视频办理。</p>
</main></body></html>"""
DEFAULT_STEPS = ("在村便民服务点的屏幕上选择这个事项，点“开始排队”",
                 "工作人员接通视频后，按提示把身份证和材料放在下方摄像头下",
                 "工作人员当场告诉您结果；需要审批的，办好后在本终端打印")


def render(item: ServiceItem, guide: dict[str, object]) -> str:
    """The guide page of one item (pure; every value escaped)."""
    materials = "".join(
        f"<li>{escape(m.name)}{'' if m.core else '<span class=tag>可容缺</span>'}</li>"
        for m in item.materials) or "<li>不需要材料</li>"
    raw_steps = guide.get("steps")
    steps = [str(s) for s in raw_steps] if isinstance(raw_steps, list) and raw_steps \
        else list(DEFAULT_STEPS)
    notes = str(guide.get("notes") or "")
    return PAGE.format(
        name=escape(item.name), plain=escape(item.plain_name), materials=materials,
        steps="".join(f"<li>{escape(s)}</li>" for s in steps), days=item.time_limit_days,
        department=escape(item.department), fees=escape(str(guide.get("fees") or "不收费")),
        notes=f"<h2>说明</h2><p>{escape(notes)}</p>" if notes else "")


def _item(request: web.Request) -> ServiceItem:
    item = request.app[NODE].catalogue.get(request.match_info["code"])
    if item is None:
        raise http_error(web.HTTPNotFound, "unknown_item", "没有这个事项")
    return item


async def guide_page(request: web.Request) -> web.Response:
    item = _item(request)
    return web.Response(text=render(item, item.guide), content_type="text/html")


def _qr_svg(text: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10).save(out)
    return out.getvalue()


async def guide_qr(request: web.Request) -> web.Response:
    item = _item(request)
    url = f"{request.app[SETTINGS].base_url.rstrip('/')}/guide/{item.code}"
    svg = await asyncio.to_thread(_qr_svg, url)
    return web.Response(body=svg, content_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=600"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/guide/{code}", guide_page)
    app.router.add_get("/api/guide/{code}/qr.svg", guide_qr)

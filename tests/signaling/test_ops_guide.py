"""办事指南: a plain page per item, open without a login, and its QR code for the kiosk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from core.catalogue import ItemMaterial, ServiceItem
from core.settings import Settings
from signaling.app import create_app
from signaling.guide_page import render


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(settings))
    await srv.start_server()
    yield srv
    await srv.close()


def test_the_page_lists_materials_steps_limit_and_fees_escaped() -> None:
    item = ServiceItem(code="X", name="测试<事项>", plain_name="办测试", category="c",
                       level="village", department="民政办",
                       materials=[ItemMaterial(name="身份证", core=True),
                                  ItemMaterial(name="户口簿", core=False)],
                       clerk_regions=[], time_limit_days=7)
    page = render(item, {"steps": ["第一步"], "fees": "工本费 5 元"})
    assert "测试&lt;事项&gt;" in page and "<事项>" not in page
    assert "户口簿<span class=tag>可容缺</span>" in page
    assert "<li>第一步</li>" in page and "7 个工作日" in page and "工本费 5 元" in page
    assert "不收费" in render(item, {})


async def test_anyone_opens_the_guide_and_its_qr_code(server: TestServer) -> None:
    async with ClientSession(base_url=str(server.make_url("/"))) as phone:
        page = await phone.get("/guide/YL-CB")
        assert page.status == 200 and "办事指南" in await page.text()
        qr = await phone.get("/api/guide/YL-CB/qr.svg")
        assert qr.status == 200 and qr.content_type == "image/svg+xml"
        assert (await qr.read()).lstrip().startswith(b"<?xml")
        assert (await phone.get("/guide/NOPE")).status == 404

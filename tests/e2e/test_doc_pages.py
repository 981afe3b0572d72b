"""「拍材料」 end to end in Debian's Chromium, in a loopback-only namespace: two materials,
one of two pages, with guidance on the console and the kiosk; the reviewer sees the
flattened pages and the PDF (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.run import run_scenario

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scenario("doc_scenario", tmp_path_factory.mktemp("e2e-doc"), 240)


def test_two_materials_one_of_two_pages_with_guidance_on_both_sides(
        capture: dict[str, Any]) -> None:
    assert capture["kiosk_guidance"]  # large words over the kiosk's own preview
    for page in ("id_card", "booklet_1", "booklet_2"):
        assert capture[page]["flat_px"] >= 1000, capture[page]
        assert "拍好了" in capture[page]["words"] or "第" in capture[page]["words"]
    assert capture["page_label"] == "第 2 页"
    assert {"身份证", "户口簿"} <= set(capture["ticked"])


def test_the_reviewer_sees_the_flattened_pages_and_the_pdf(capture: dict[str, Any]) -> None:
    assert capture["reviewer_materials"] == ["身份证（1 页）", "户口簿（2 页）"]
    assert len(capture["reviewer_pages"]) == 3 and min(capture["reviewer_pages"]) >= 1000
    assert capture["pdf_status"] == 200 and capture["pdf_pages"] == 3
    assert capture["page_errors"] == [] and capture["outside_requests"] == []

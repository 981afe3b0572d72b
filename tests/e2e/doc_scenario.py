"""The capture scenario, run inside `unshare -n` by tests/e2e/test_doc_pages.py.

The fake camera shows a generated A4 page on a cluttered desk. The clerk opens 「拍材料」,
takes 身份证 (one page) and 户口簿 (two pages, 下一页) with guidance on both pages, submits
the case; the reviewer opens it and sees the flattened pages and the PDF. Writes
DIR/result.json (and screenshots under DIR/screens).

    unshare -n -- python -m tests.e2e.doc_scenario --out DIR
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from playwright.sync_api import Page, sync_playwright

from testkit.synth_doc import make_frame
from tests.e2e.pages import (
    Watch,
    clerk_ready,
    frames_advance,
    kiosk_join,
    open_case_as_reviewer,
    open_clerk,
    open_kiosk,
    verify_by_hand,
    wait_offer,
    wait_until,
)
from tests.e2e.stack import (
    CHROMIUM,
    Stack,
    chromium_args,
    running_stack,
    scenario_main,
)

VALID_ID = "420115196503120027"


def page_y4m(out: Path, width: int = 640, height: int = 480, frames: int = 30) -> Path:
    """The fake camera: one page on a desk (still: the page lies on the table)."""
    scene = make_frame(np.random.default_rng(3), "a4", "good").image
    h, w = scene.shape[:2]
    crop = round(h * width / height)  # the camera's 4:3, cut from the 16:9 scene unsquashed
    scene = scene[:, (w - crop) // 2:(w - crop) // 2 + crop]
    yuv = cv2.cvtColor(cv2.resize(scene, (width, height), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2YUV_I420)
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.write(np.asarray(yuv, np.uint8).tobytes())
    return out


class DocScenario:
    def __init__(self, stack: Stack, out: Path) -> None:
        self.stack = stack
        self.out = out
        self.result: dict[str, Any] = {"ok": False, "steps": []}

    def shot(self, page: Page, name: str) -> None:
        folder = self.out / "screens"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def take_page(self, clerk: Page, kiosk: Page, label: str) -> dict[str, Any]:
        before = clerk.evaluate("window.__console.scans.length")
        done_before = kiosk.evaluate("window.__docDone || 0")
        wait_until("可以拍了 on the console",
                   lambda: clerk.inner_text("#doc-words") == "可以拍了", 30)
        clerk.click("#doc-take")
        wait_until(f"{label} kept", lambda: clerk.evaluate("window.__console.scans.length")
                   > before, 30)
        wait_until("the flattened page shown", lambda: clerk.evaluate(
            "document.getElementById('doc-flat').naturalWidth") > 0, 20)
        wait_until("拍好了 on the kiosk",
                   lambda: kiosk.evaluate("window.__docDone || 0") > done_before, 10)
        return {"words": clerk.inner_text("#doc-result-words"),
                "flat_px": clerk.evaluate("document.getElementById('doc-flat').naturalWidth"),
                "kiosk_words": kiosk.evaluate("window.__docWords || ''")}

    def run(self, kiosk: Page, clerk: Page, reviewer: Page) -> None:
        r = self.result
        kiosk_join(kiosk)
        clerk_ready(clerk)
        wait_offer(clerk)
        clerk.click("#accept")
        kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=15000)
        clerk.wait_for_selector("#call:not([hidden])", timeout=15000)
        frames_advance(clerk, "document")
        r["call_id"] = clerk.evaluate("window.__console.call.call_id")
        clerk.click("#doc-open")
        clerk.wait_for_selector("#doc-panel:not([hidden])")
        clerk.select_option("#doc-material", label="身份证")
        kiosk.wait_for_selector("#doc-guide:not([hidden])", timeout=20000)
        r["kiosk_guidance"] = kiosk.inner_text("#doc-guide-words")
        r["id_card"] = self.take_page(clerk, kiosk, "身份证")
        self.shot(clerk, "clerk-id-card")
        self.shot(kiosk, "kiosk-guidance")
        clerk.select_option("#doc-material", label="户口簿")
        r["booklet_1"] = self.take_page(clerk, kiosk, "户口簿 第 1 页")
        clerk.click("#doc-next")
        r["page_label"] = clerk.inner_text("#doc-page")
        r["booklet_2"] = self.take_page(clerk, kiosk, "户口簿 第 2 页")
        r["ticked"] = [b.get_attribute("value") for b in
                       clerk.query_selector_all("#case-materials input:checked")]
        clerk.click("#doc-close")
        clerk.fill("#case-name", "张三")
        clerk.fill("#case-id", VALID_ID)
        clerk.fill("#case-phone", "13800000000")
        clerk.check("input[name=outcome][value=现场开单]")
        missing = clerk.query_selector_all("#case-materials input:not(:checked)")
        if missing:
            clerk.fill("#case-promise", "2030-01-01")
        verify_by_hand(clerk)
        clerk.click("#case-submit")
        wait_until("case number", lambda: "办件编号" in clerk.inner_text("#case-result"), 20)
        found = re.search(r"办件编号 (\S+)（", clerk.inner_text("#case-result"))
        assert found, clerk.inner_text("#case-result")
        case_no = found.group(1)
        r["case_no"] = case_no
        # The reviewer of the item's group opens the case: pages and the PDF.
        open_case_as_reviewer(reviewer, self.stack.base_url, case_no)
        reviewer.wait_for_selector("#d-pages img.page", timeout=20000)
        wait_until("pages decoded", lambda: reviewer.evaluate(
            "[...document.querySelectorAll('#d-pages img.page')]"
            ".filter(i => i.naturalWidth > 0).length") == 3, 20)
        r["reviewer_pages"] = reviewer.evaluate(
            "[...document.querySelectorAll('#d-pages img.page')].map(i => i.naturalWidth)")
        r["reviewer_materials"] = reviewer.evaluate(
            "[...document.querySelectorAll('#d-pages h4')].map(h => h.textContent)")
        self.shot(reviewer, "reviewer-materials")
        pdf = reviewer.request.get(f"{self.stack.base_url}/api/cases/{case_no}/materials.pdf")
        body = pdf.body()
        r["pdf_status"] = pdf.status
        r["pdf_pages"] = len(re.findall(rb"/Type\s*/Page(?!s)", body))


def browse(out: Path, result: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="e2e-doc-") as tmp, \
            running_stack(Path(tmp) / "stack") as stack, sync_playwright() as pw:
        y4m = page_y4m(Path(tmp) / "page.y4m")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m))
        watch = Watch()
        contexts = [browser.new_context() for _ in range(3)]
        for ctx in contexts:
            ctx.set_default_timeout(15000)
            watch.attach(ctx)
        scenario = DocScenario(stack, out)
        result.update(scenario.result)
        scenario.result = result  # filled in as it goes, kept when a step fails
        kiosk = open_kiosk(contexts[0], stack.base_url)
        clerk = open_clerk(contexts[1], stack.base_url)
        reviewer = contexts[2].new_page()
        try:
            scenario.run(kiosk, clerk, reviewer)
        except Exception:
            for page, name in ((kiosk, "kiosk-failure"), (clerk, "clerk-failure"),
                               (reviewer, "reviewer-failure")):
                with contextlib.suppress(Exception):  # the failure is reported below
                    scenario.shot(page, name)
            raise
        finally:
            result["page_errors"] = watch.page_errors
            result["outside_requests"] = watch.outside()
            browser.close()


if __name__ == "__main__":
    sys.exit(scenario_main(browse))

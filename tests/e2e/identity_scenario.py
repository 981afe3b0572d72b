"""The identity visit, run inside `unshare -n` by tests/e2e/test_identity_pages.py.

The kiosk's cameras are canvases (tests/e2e/fake_cameras.js): the document camera shows an
ID card made from one photo of a person, the face camera a live face made from another
photo of the same person that follows the challenge the kiosk shows. The clerk presses
「核验身份」; the worker runs the real check; the verdict shows on the console, 核验完成 on
the kiosk; the number read from the card fills the case, which is submitted with the bound
verification and shown on the reviewer page. Writes DIR/result.json and DIR/screens.

    unshare -n -- python -m tests.e2e.identity_scenario --out DIR
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import cv2
from playwright.sync_api import Page, sync_playwright

from tests.e2e.pages import (
    Watch,
    clerk_ready,
    frames_advance,
    kiosk_join,
    open_case_as_reviewer,
    open_clerk,
    open_kiosk,
    wait_offer,
    wait_until,
)
from tests.e2e.stack import (
    CHROMIUM,
    FACES,
    Stack,
    chromium_args,
    make_y4m,
    running_stack,
    scenario_main,
)
from tests.media.identity_peers import CARD_NUMBER, Face, card_frame, heads

FAKE_CAMERAS = Path(__file__).with_name("fake_cameras.js")
# Timers of a page that is not in front must not slow the canvas cameras.
EXTRA_ARGS = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding",
              "--disable-backgrounding-occluded-windows"]


def data_url(rgb: Any, quality: int = 90) -> str:
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode()


def camera_script(card_photo: str, face_photo: str) -> str:
    people = heads(FACES, card_photo, face_photo)
    face = Face.of(people[face_photo])
    frames = {"neutral": [data_url(f) for f in face.neutral],
              "moves": {m: [data_url(f) for f in seq] for m, seq in face.moves.items()},
              "card": data_url(card_frame(people[card_photo]), 95)}
    return f"window.__FAKE_FRAMES = {json.dumps(frames)};\n" + FAKE_CAMERAS.read_text()


class IdentityScenario:
    def __init__(self, stack: Stack, out: Path, result: dict[str, Any]) -> None:
        self.stack = stack
        self.out = out
        self.result = result

    def shot(self, page: Page, name: str) -> None:
        folder = self.out / "screens"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def run(self, kiosk: Page, clerk: Page, reviewer: Page) -> None:
        r = self.result
        kiosk_join(kiosk)
        clerk_ready(clerk)
        wait_offer(clerk)
        clerk.click("#accept")
        kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=15000)
        clerk.wait_for_selector("#call:not([hidden])", timeout=15000)
        frames_advance(clerk, "face")
        frames_advance(clerk, "document")
        r["call_id"] = clerk.evaluate("window.__console.call.call_id")

        # The check: card, then the moves the kiosk asks for, then the verdict.
        clerk.wait_for_selector("#id-start:not([disabled])")
        clerk.click("#id-start")
        kiosk.wait_for_selector("#identity-overlay:not([hidden])", timeout=20000)
        r["kiosk_first_prompt"] = kiosk.inner_text("#id-prompt")
        wait_until("the liveness step on the kiosk", lambda: kiosk.evaluate(
            "document.getElementById('identity-overlay').dataset.step") == "face", 40)
        self.shot(kiosk, "kiosk-identity-move")
        self.shot(clerk, "clerk-identity-running")
        clerk.wait_for_selector("#id-verdict:not([hidden]) .verdict", timeout=90000)
        r["verdict"] = clerk.inner_text("#id-verdict .verdict >> nth=0")
        r["verdict_text"] = clerk.inner_text("#id-verdict")
        r["moves_played"] = kiosk.evaluate("window.__fakeCam.played")
        r["kiosk_seen"] = kiosk.evaluate("window.__fakeCam.seen")
        wait_until("evidence pictures on the console", lambda: clerk.evaluate(
            "[...document.querySelectorAll('#id-frames img')]"
            ".filter(i => i.naturalWidth > 0).length") >= 2, 20)
        r["clerk_evidence"] = clerk.evaluate(
            "[...document.querySelectorAll('#id-frames figcaption')].map(f => f.textContent)")
        r["number_note"] = clerk.inner_text("#id-number")
        r["case_id_filled"] = clerk.input_value("#case-id")
        r["override_open"] = clerk.evaluate("!document.getElementById('id-override').hidden")
        self.shot(clerk, "clerk-identity-verdict")
        self.shot(kiosk, "kiosk-identity-done")

        # The case, with the number read from the card and the bound verification.
        clerk.fill("#case-name", "张三")
        clerk.fill("#case-phone", "13800000000")
        for box in clerk.query_selector_all("#case-materials input[data-core=true]"):
            box.check()
        clerk.fill("#case-promise", (date.today() + timedelta(days=7)).isoformat())
        clerk.check("input[name=outcome][value=现场开单]")
        clerk.click("#case-submit")
        wait_until("case number", lambda: "办件编号" in clerk.inner_text("#case-result"), 20)
        found = re.search(r"办件编号 (\S+)（", clerk.inner_text("#case-result"))
        assert found, clerk.inner_text("#case-result")
        r["case_no"] = found.group(1)

        open_case_as_reviewer(reviewer, self.stack.base_url, r["case_no"])
        reviewer.wait_for_selector("#d-verification li", timeout=20000)
        wait_until("the reviewer's evidence pictures", lambda: reviewer.evaluate(
            "[...document.querySelectorAll('#d-verification img')]"
            ".filter(i => i.naturalWidth > 0).length") >= 2, 20)
        r["reviewer_verification"] = reviewer.inner_text("#d-verification")
        r["reviewer_pictures"] = reviewer.evaluate(
            "[...document.querySelectorAll('#d-verification figcaption')]"
            ".map(f => f.textContent)")
        self.shot(reviewer, "reviewer-verification")


def browse(out: Path, result: dict[str, Any]) -> None:
    result["card_number"] = CARD_NUMBER
    with tempfile.TemporaryDirectory(prefix="e2e-id-") as tmp, \
            running_stack(Path(tmp) / "stack") as stack, sync_playwright() as pw:
        y4m = make_y4m(Path(tmp) / "clerk.y4m")  # the clerk's own camera
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=chromium_args(y4m) + EXTRA_ARGS)
        watch = Watch()
        contexts = [browser.new_context() for _ in range(3)]
        for ctx in contexts:
            ctx.set_default_timeout(15000)
            watch.attach(ctx)
        contexts[0].add_init_script(camera_script("obama2.jpg", "obama.jpg"))
        scenario = IdentityScenario(stack, out, result)
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
            with contextlib.suppress(Exception):  # what the fake camera played, for the report
                result["moves_played"] = kiosk.evaluate("window.__fakeCam.played")
                result["kiosk_seen"] = kiosk.evaluate("window.__fakeCam.seen")
            raise
        finally:
            result["page_errors"] = watch.page_errors
            result["outside_requests"] = watch.outside()
            browser.close()
            for log_file in stack.folder.glob("*.log"):  # the worker's side, for a failure
                shutil.copy(log_file, out / log_file.name)


if __name__ == "__main__":
    sys.exit(scenario_main(browse))

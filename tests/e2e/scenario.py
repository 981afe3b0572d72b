"""The browser scenario, run inside `unshare -n` by tests/e2e/test_pages.py.

`python -m tests.e2e.scenario --out DIR` brings the whole stack up in the private network
namespace, drives a kiosk and a clerk console in Debian's Chromium, saves screenshots under
DIR/screens and writes DIR/result.json. Exit status 1 with a plain message on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Page, sync_playwright

from approval.messages import CaseResult
from core import keys
from core.fanout import terminal_target
from testkit.localstack import direct
from tests.e2e.pages import (
    Watch,
    clerk_ready,
    frames_advance,
    kiosk_join,
    open_clerk,
    open_kiosk,
    rate_visit,
    verify_by_hand,
    wait_offer,
    wait_until,
)
from tests.e2e.stack import (
    CHROMIUM,
    TERMINAL_ID,
    Stack,
    chromium_args,
    in_private_netns,
    make_y4m,
    running_stack,
)

VALID_ID = "420115196503120027"


class Scenario:
    def __init__(self, stack: Stack, out: Path) -> None:
        self.stack = stack
        self.shots = out / "screens"
        self.shots.mkdir(parents=True, exist_ok=True)
        self.result: dict[str, Any] = {"steps": [], "screenshots": []}

    def shot(self, page: Page, name: str) -> None:
        path = self.shots / f"{len(self.result['screenshots']):02d}-{name}.png"
        page.screenshot(path=str(path))
        self.result["screenshots"].append(path.name)

    def forwarding(self, call_id: str) -> dict[str, int]:
        """The worker's count of frames passed through versus encoded again."""
        with direct.open(f"{self.stack.media_url}/health", timeout=10) as resp:
            health = json.load(resp)
        out: dict[str, int] = health["calls_detail"][call_id]["forwarding"]
        return out

    def step(self, name: str, **facts: Any) -> None:
        self.result["steps"].append({"step": name, **facts})

    def run(self, kiosk: Page, clerk: Page, helper: Page) -> None:
        self.helper = helper
        r = self.result
        self.shot(kiosk, "kiosk-start")
        self.shot(clerk, "clerk-idle")
        # Body text and touch targets on the kiosk.
        r["kiosk_body_px"] = kiosk.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        r["kiosk_min_tile_px"] = kiosk.evaluate(
            "Math.min(...[...document.querySelectorAll('.tile')]"
            ".map(b => b.getBoundingClientRect().height))")

        # 1. Reject: the applicant keeps its place, the clerk goes not ready.
        kiosk_join(kiosk)
        self.shot(kiosk, "kiosk-queue")
        ticket = kiosk.evaluate("window.__kiosk.ticket")
        clerk_ready(clerk)
        wait_offer(clerk)
        self.shot(clerk, "clerk-offer")
        clerk.click("#reject")
        wait_until("clerk not ready after reject", lambda: "未就绪" in clerk.inner_text("#status"))
        r["reject_status"] = clerk.inner_text("#status")
        self.step("reject")

        # 2. The kiosk reloads while waiting: same ticket, back on the queue screen.
        kiosk.reload()
        kiosk.wait_for_selector("#screen-queue:not([hidden])", timeout=15000)
        wait_until("position after reload", lambda: kiosk.inner_text("#position") != "–")
        r["ticket_before_reload"] = ticket
        r["ticket_after_reload"] = kiosk.evaluate("window.__kiosk.ticket")
        r["position_after_reload"] = kiosk.inner_text("#position")
        self.step("kiosk_reload")

        # 2b. The network drops (signaling restarts): the kiosk reconnects by itself.
        self.stack.start("signaling")
        wait_until("kiosk noticed the lost network",
                   lambda: kiosk.evaluate("window.__netLost || 0") > 0)
        kiosk.wait_for_selector("#netlost", state="hidden", timeout=20000)
        r["ticket_after_network_loss"] = kiosk.evaluate("window.__kiosk.ticket")
        r["screen_after_network_loss"] = kiosk.evaluate("document.body.dataset.screen")
        clerk.wait_for_selector("#netlost", state="hidden", timeout=20000)
        self.step("network_loss_wait")

        # 3. Offer timeout: nobody answers, the clerk is set not ready and told so.
        clerk_ready(clerk)
        wait_offer(clerk)
        clerk.wait_for_selector("#offer:not([hidden])")
        # The countdown is drawn by a 250 ms timer: read it once it has drawn.
        for _ in range(40):
            r["countdown_shown"] = clerk.inner_text("#offer-count").strip()
            if r["countdown_shown"]:
                break
            clerk.wait_for_timeout(100)
        clerk.wait_for_selector("#offer", state="hidden",
                                timeout=(self.stack.offer_timeout_s + 10) * 1000)
        wait_until("timeout notice", lambda: "超时" in clerk.inner_text("#error"))
        r["timeout_notice"] = clerk.inner_text("#error")
        r["timeout_status"] = clerk.inner_text("#status")
        r["kiosk_screen_after_timeout"] = kiosk.evaluate("document.body.dataset.screen")
        self.step("offer_timeout")

        # 4. The call: each page shows the other's live video.
        clerk_ready(clerk)
        wait_offer(clerk)
        clerk.click("#accept")
        kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=15000)
        clerk.wait_for_selector("#call:not([hidden])", timeout=15000)
        r["kiosk_clerk_frames"] = frames_advance(kiosk, "clerk")
        r["clerk_face_frames"] = frames_advance(clerk, "face")
        r["clerk_document_frames"] = frames_advance(clerk, "document")
        r["call_id"] = clerk.evaluate("window.__console.call.call_id")
        r["forwarding"] = self.forwarding(r["call_id"])
        self.shot(kiosk, "kiosk-call")
        self.shot(clerk, "clerk-call")
        self.step("call")

        # 5. The clerk's page reloads during the call and rejoins it.
        clerk.reload()
        clerk.wait_for_selector("#call:not([hidden])", timeout=15000)
        r["clerk_face_frames_after_reload"] = frames_advance(clerk, "face")
        r["call_id_after_reload"] = clerk.evaluate("window.__console.call.call_id")
        r["kiosk_clerk_frames_after_reload"] = frames_advance(kiosk, "clerk")
        r["forwarding_after_reload"] = self.forwarding(r["call_id"])
        self.step("clerk_reload")

        # 5b. The network drops during the call: both pages reconnect, the video goes on.
        lost_before = kiosk.evaluate("window.__netLost || 0")
        self.stack.start("signaling")
        wait_until("kiosk noticed the lost network",
                   lambda: kiosk.evaluate("window.__netLost || 0") > lost_before)
        kiosk.wait_for_selector("#netlost", state="hidden", timeout=20000)
        clerk.wait_for_selector("#netlost", state="hidden", timeout=20000)
        r["screen_after_call_network_loss"] = kiosk.evaluate("document.body.dataset.screen")
        r["kiosk_clerk_frames_after_network_loss"] = frames_advance(kiosk, "clerk")
        r["clerk_face_frames_after_network_loss"] = frames_advance(clerk, "face")
        self.step("network_loss_call")

        # 5c. 三方连线: clerk2 is invited, sees the applicant, and is seen by both.
        helper = self.helper
        clerk.fill("#invite-user", "clerk2")
        clerk.click("#invite-send")
        helper.wait_for_selector("#invite:not([hidden])", timeout=15000)
        helper.click("#invite-accept")
        helper.wait_for_selector("#call:not([hidden])", timeout=15000)
        r["second_sees_face_frames"] = frames_advance(helper, "face")
        r["second_sees_clerk_frames"] = frames_advance(helper, "second")
        r["kiosk_second_frames"] = frames_advance(kiosk, "second")
        r["clerk_second_frames"] = frames_advance(clerk, "second")
        self.shot(helper, "second-clerk-call")
        self.shot(kiosk, "kiosk-three-way")
        helper.click("#hangup")
        helper.wait_for_selector("#call", state="hidden", timeout=15000)
        r["call_after_second_left"] = clerk.evaluate("window.__console.call?.call_id || null")
        self.step("second_clerk")

        # 6. Capture and the case.
        clerk.click("#capture")
        clerk.wait_for_selector("#thumbs img", timeout=20000)
        wait_until("thumbnail decoded", lambda: clerk.evaluate(
            "document.querySelector('#thumbs img').naturalWidth") > 0)
        r["scans"] = len(clerk.evaluate("window.__console.scans"))
        clerk.fill("#case-name", "张三")
        clerk.fill("#case-id", VALID_ID[:-1] + ("1" if VALID_ID[-1] != "1" else "2"))
        r["bad_id_hint"] = clerk.inner_text("#case-id-check")
        clerk.fill("#case-id", VALID_ID)
        r["good_id_hint"] = clerk.inner_text("#case-id-check")
        clerk.fill("#case-phone", "13800000000")
        for box in clerk.query_selector_all("#case-materials input[data-core=true]"):
            box.check()
        clerk.fill("#case-promise", (date.today() + timedelta(days=7)).isoformat())
        clerk.check("input[name=outcome][value=现场开单]")
        # No identity check in this visit: the clerk verifies by hand, with a reason.
        verify_by_hand(clerk)
        self.shot(clerk, "clerk-case-form")
        clerk.click("#case-submit")
        wait_until("case number", lambda: "办件编号" in clerk.inner_text("#case-result"), 20)
        r["clerk_case_result"] = clerk.inner_text("#case-result")
        kiosk.wait_for_selector("#screen-done:not([hidden])", timeout=15000)
        wait_until("QR decoded", lambda: kiosk.evaluate(
            "document.getElementById('slip-qr').naturalWidth") > 0)
        r["kiosk_outcome"] = kiosk.inner_text("#outcome")
        r["kiosk_missing"] = kiosk.inner_text("#missing")
        r["slip_case_no"] = kiosk.inner_text("#slip-no")
        self.shot(kiosk, "kiosk-done")
        kiosk.emulate_media(media="print")
        self.shot(kiosk, "kiosk-slip-print")
        kiosk.emulate_media(media="screen")
        self.step("case")

        # 7. Hang up into wrap-up, then done.
        clerk.click("#hangup")
        clerk.wait_for_selector("#wrapup:not([hidden])", timeout=15000)
        self.shot(clerk, "clerk-wrapup")
        clerk.click("#wrapup-done")
        clerk.wait_for_selector("#idle:not([hidden])", timeout=15000)
        r["kiosk_screen_after_hangup"] = kiosk.evaluate("document.body.dataset.screen")
        folder = self.stack.storage_root / "recordings" / r["call_id"]
        wait_until("recording segments", lambda: any(
            p.stat().st_size > 0 for p in folder.glob("*.mp4")) if folder.is_dir() else False, 20)
        r["recording_files"] = sorted(p.name for p in folder.glob("*.mp4"))
        self.step("hangup")

        # 8. The applicant rates the visit (好差评, after every call), then goes home; back to
        # the start by itself after inactivity; errors in plain words.
        rate_visit(kiosk)
        kiosk.click("#home")
        kiosk.click("#categories .tile >> nth=0")
        kiosk.click("#results .tile >> nth=0")
        kiosk.wait_for_selector("#screen-materials:not([hidden])")
        self.shot(kiosk, "kiosk-materials")
        r["kiosk_min_target_px"] = kiosk.evaluate(
            "Math.min(...[...document.querySelectorAll('#screen-materials button,"
            " #screen-materials label.check')].map(b => b.getBoundingClientRect().height))")
        kiosk.wait_for_selector("#screen-start:not([hidden])", timeout=15000)
        r["idle_returned_to"] = kiosk.evaluate("document.body.dataset.screen")
        self.step("idle")

        # 9. The approval's result reaches the kiosk's start screen (as approval sends it).
        result = CaseResult(case_no=r["slip_case_no"], status="certified", status_name="已出证",
                            certificate_no="E20261125ABCDEF0123")
        client = redis.Redis.from_url(self.stack.env["REDIS_URL"])
        try:
            client.publish(keys.events_channel(),
                           f"{terminal_target(TERMINAL_ID)}\n{result.model_dump_json()}")
        finally:
            client.close()
        kiosk.wait_for_selector("#certs:not([hidden]) button", timeout=15000)
        r["certificate_notice"] = kiosk.inner_text("#cert-list")
        self.shot(kiosk, "kiosk-certificate-ready")
        self.step("case_result")

        # 10. Printing asks for the slip's proof: a wrong one is refused, the right one opens.
        kiosk.click("#certs-open")
        kiosk.wait_for_selector("#screen-certs:not([hidden])")
        kiosk.fill("#proof-slip", r["slip_case_no"])
        kiosk.fill("#proof-last4", "9999")
        kiosk.click("#slip-form button[type=submit]")
        wait_until("proof refused", lambda: kiosk.inner_text("#proof-error").strip())
        r["wrong_proof"] = kiosk.inner_text("#proof-error")
        kiosk.fill("#proof-last4", VALID_ID[-4:])
        kiosk.click("#slip-form button[type=submit]")
        wait_until("proof accepted", lambda: "还没有可以打印" in kiosk.inner_text("#proof-error"))
        r["right_proof"] = kiosk.inner_text("#proof-error")  # approved later, not yet
        self.shot(kiosk, "kiosk-certificate-proof")
        kiosk.click("#certs-done")
        self.step("certificate_proof")

    def enrol(self, context: Any) -> None:
        """11. A new kiosk without a credential enrols with a one-time code."""
        # The administrator's command, as an operator runs it.
        out = subprocess.run([sys.executable, "-m", "signaling.admin", "enrol-terminal",
                              "T-420115-002"], env=self.stack.env, capture_output=True,
                             text=True, timeout=60, check=True)
        code = out.stdout.strip().rsplit("：", 1)[1]
        page = context.new_page()
        page.goto(f"{self.stack.base_url}/terminal/")
        page.wait_for_selector("#screen-login:not([hidden])")
        page.fill("#enrol-code", "WRONG-CODE1")
        page.click("#enrol-form button[type=submit]")
        wait_until("bad code refused", lambda: page.inner_text("#enrol-error").strip())
        self.result["enrol_wrong"] = page.inner_text("#enrol-error")
        page.fill("#enrol-code", code)
        page.click("#enrol-form button[type=submit]")
        page.wait_for_selector("#screen-start:not([hidden]) .tile", timeout=15000)
        page.reload()  # the device cookie alone brings it back
        page.wait_for_selector("#screen-start:not([hidden]) .tile", timeout=15000)
        # The place's name comes with the socket's hello, a moment after the tiles.
        with contextlib.suppress(AssertionError):
            wait_until("the place's name", lambda: page.inner_text("#place") != "便民服务点")
        self.result["enrolled_place"] = page.inner_text("#place")
        self.result["enrolled_url"] = page.url
        self.shot(page, "kiosk-enrolled")
        self.step("enrol")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"ok": False}
    started = time.monotonic()
    try:
        in_private_netns()
        with tempfile.TemporaryDirectory(prefix="e2e-") as tmp, \
                running_stack(Path(tmp) / "stack") as stack, sync_playwright() as pw:
            y4m = make_y4m(Path(tmp) / "face.y4m")
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m))
            watch = Watch()
            kiosk_ctx, clerk_ctx = browser.new_context(), browser.new_context()
            kiosk_ctx.set_default_timeout(15000)
            clerk_ctx.set_default_timeout(15000)
            watch.attach(kiosk_ctx)
            watch.attach(clerk_ctx)
            scenario = Scenario(stack, out)
            result = scenario.result
            wrong = clerk_ctx.new_page()
            wrong.goto(f"{stack.base_url}/clerk/")
            wrong.fill("#username", "clerk1")
            wrong.fill("#password", "wrong-password")
            wrong.click("#login-form button[type=submit]")
            wait_until("login error", lambda: wrong.inner_text("#error").strip())
            result["login_error"] = wrong.inner_text("#error")
            wrong.close()
            kiosk = open_kiosk(kiosk_ctx, stack.base_url, "&idle=3")
            clerk = open_clerk(clerk_ctx, stack.base_url)
            helper_ctx = browser.new_context()
            helper_ctx.set_default_timeout(15000)
            watch.attach(helper_ctx)
            helper = open_clerk(helper_ctx, stack.base_url, "clerk2")
            try:
                scenario.run(kiosk, clerk, helper)
                scenario.enrol(browser.new_context())
            except Exception:
                for page, name in ((kiosk, "kiosk-failure"), (clerk, "clerk-failure"),
                                       (helper, "clerk2-failure")):
                    with contextlib.suppress(Exception):  # the failure is reported below
                        scenario.shot(page, name)
                raise
            finally:
                result["outside_requests"] = watch.outside()
                result["requests"] = len(watch.urls)
                result["page_errors"] = watch.page_errors
                result["not_found"] = watch.not_found
                browser.close()
            result["ok"] = True
    except Exception as exc:  # the pytest side shows this message
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc()
        print(result["error"], file=sys.stderr)
    result["wall_s"] = round(time.monotonic() - started, 1)
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

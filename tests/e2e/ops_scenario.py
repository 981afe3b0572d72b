"""The operations browser scenario, run inside `unshare -n` by tests/e2e/test_ops_pages.py.

`python -m tests.e2e.ops_scenario --out DIR` brings the stack up in the private network
namespace and drives Debian's Chromium: the supervisor page stays open (never reloaded)
while a kiosk joins the queue and a clerk goes ready and takes the call, which the
supervisor watches (监看) while the clerk sees it; after the call
the kiosk asks for a rating, and a 不满意 becomes a follow-up task on the board; an admin
creates a clerk who logs in and takes a call, and enrols a terminal with a code that then
reaches the queue. Writes DIR/result.json (and DIR/screens).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.pages import (
    Watch,
    clerk_ready,
    frames_advance,
    kiosk_join,
    open_clerk,
    open_kiosk,
    wait_until,
)
from tests.e2e.stack import (
    CHROMIUM,
    Stack,
    chromium_args,
    make_y4m,
    running_stack,
    scenario_main,
)


def login(page: Page, base: str, path: str, username: str) -> Page:
    page.goto(f"{base}{path}")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#username", username)
    page.fill("#password", "demo1234")
    page.click("#login-form button[type=submit]")
    return page


def waiting_total(board: Page) -> int:
    cells = board.eval_on_selector_all("#items td.waiting", "els => els.map(e => e.textContent)")
    return sum(int(c) for c in cells if c.isdigit())


def clerk_row(board: Page, username: str) -> str:
    row = board.query_selector(f"#clerks tr[data-clerk='{username}']")
    return row.inner_text() if row is not None else ""


def supervise(stack: Stack, browser: Browser, watch: Watch, shots: Path, y4m: Path,
              result: dict[str, Any]) -> None:
    ctx = browser.new_context()
    watch.attach(ctx)
    board = login(ctx.new_page(), stack.base_url, "/supervisor/", "duty1")
    board.wait_for_selector("#board:not([hidden])")
    wait_until("live", lambda: board.inner_text("#link") == "实时")
    board.evaluate("window.__notReloaded = true")
    wait_until("the snapshot", lambda: board.query_selector("#items td.waiting") is not None)
    result["waiting_before"] = waiting_total(board)

    kiosk_ctx = browser.new_context()
    watch.attach(kiosk_ctx)
    kiosk = open_kiosk(kiosk_ctx, stack.base_url)
    kiosk_join(kiosk)
    started = time.monotonic()
    wait_until("the board shows the applicant", lambda: waiting_total(board)
               > result["waiting_before"], timeout_s=10)
    result["queue_shown_after_s"] = round(time.monotonic() - started, 2)
    board.screenshot(path=str(shots / "supervisor-waiting.png"))

    clerk_ctx = browser.new_context()
    watch.attach(clerk_ctx)
    clerk = open_clerk(clerk_ctx, stack.base_url)
    started = time.monotonic()
    clerk_ready(clerk)
    wait_until("the board shows clerk1 ready", lambda: any(
        w in clerk_row(board, "clerk1") for w in ("就绪", "来电中")), timeout_s=10)
    result["ready_shown_after_s"] = round(time.monotonic() - started, 2)
    result["clerk_row_ready"] = clerk_row(board, "clerk1")
    clerk.wait_for_selector("#offer:not([hidden])", timeout=15000)
    clerk.click("#accept")
    kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=15000)
    wait_until("the board lists the call", lambda: "暂无通话" not in board.inner_text(
        "#calls tbody"), timeout_s=10)
    result["calls_row"] = board.inner_text("#calls tbody")
    result["clerk_row_in_call"] = clerk_row(board, "clerk1")
    board.screenshot(path=str(shots / "supervisor-call.png"))
    watch_call(board, clerk, shots, result)
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])", timeout=15000)
    wait_until("today's answered", lambda: board.inner_text("#t-answered") not in ("–", "0"),
               timeout_s=15)
    result["answered_tile"] = board.inner_text("#t-answered")
    # 好差评: the kiosk asks after the call; 不满意 with a reason opens a 回访 task.
    kiosk.wait_for_selector("#rating .face", timeout=10000)
    result["rating_question"] = kiosk.inner_text("#rating h1")
    result["rating_faces"] = kiosk.eval_on_selector_all(
        "#rating .face", "els => els.map(e => e.textContent.trim())")
    kiosk.screenshot(path=str(shots / "kiosk-rating.png"))
    kiosk.click("#rating .face[data-rating=dissatisfied]")
    kiosk.click("#rating .reason >> nth=0")
    kiosk.click("#rating-send")
    wait_until("thanks", lambda: "谢谢" in kiosk.inner_text("#rating"))
    wait_until("the follow-up on the board", lambda: board.inner_text("#t-followups")
               not in ("–", "0"), timeout_s=15)
    result["followups_tile"] = board.inner_text("#t-followups")
    result["satisfaction_tile"] = board.inner_text("#t-sat")
    result["not_reloaded"] = bool(board.evaluate("window.__notReloaded === true"))
    result["charts"] = board.eval_on_selector_all(".uplot", "els => els.length")
    result["kiosk"] = kiosk
    result["board"] = board
    result["clerk"] = clerk


def watch_call(board: Page, clerk: Page, shots: Path, result: dict[str, Any]) -> None:
    """监看: the supervisor watches the call receive-only; the clerk sees who, until it ends."""
    board.click("#calls button.watch")
    result["watch_face_frames"] = frames_advance(board, "watch:terminal.face", 10, 20)
    result["watch_clerk_frames"] = frames_advance(board, "watch:clerk.camera", 10, 20)
    clerk.wait_for_selector("#watching:not([hidden])", timeout=10000)
    result["watching_notice"] = clerk.inner_text("#watching")
    board.screenshot(path=str(shots / "supervisor-watch.png"))
    clerk.screenshot(path=str(shots / "clerk-watched.png"))
    board.click("#watch-stop")
    clerk.wait_for_selector("#watching", state="hidden", timeout=10000)
    result["call_goes_on_after_watch"] = frames_advance(clerk, "face", 10, 20) >= 10


def administer(stack: Stack, browser: Browser, watch: Watch, shots: Path,
               result: dict[str, Any]) -> None:
    """An admin creates a clerk and enrols a terminal; the clerk takes that kiosk's call."""
    ctx = browser.new_context()
    watch.attach(ctx)
    page = login(ctx.new_page(), stack.base_url, "/admin/", "admin")
    page.wait_for_selector("#view-accounts:not([hidden]) #accounts tbody tr")
    form = "#account-form"
    for name, value in (("username", "e2eclerk"), ("display_name", "新坐席 周丽"),
                        ("password", "welcome2026x"), ("region_code", "420115"),
                        ("skills", "YL-CB"), ("jurisdictions", "42")):
        page.fill(f"{form} input[name={name}]", value)
    page.select_option(f"{form} select[name=role]", "clerk")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#accounts tr[data-username=e2eclerk]")
    result["account_notice"] = page.inner_text("#notice")
    page.click("a[href='#terminals']")
    page.wait_for_selector("#view-terminals:not([hidden]) #terminals tbody tr")
    for name, value in (("terminal_id", "T-420115-091"), ("name", "新建村便民服务点"),
                        ("village", "江夏区新建村"), ("region_code", "420115")):
        page.fill(f"#terminal-form input[name={name}]", value)
    page.click("#terminal-form button[type=submit]")
    page.wait_for_selector("#enrol-code:not([hidden])")
    code = page.inner_text("#enrol-code").rsplit("：", 1)[-1].strip()
    result["enrol_code_shown"] = bool(code)
    page.screenshot(path=str(shots / "admin-terminals.png"))

    kiosk_ctx = browser.new_context()
    watch.attach(kiosk_ctx)
    kiosk = kiosk_ctx.new_page()
    kiosk.goto(f"{stack.base_url}/terminal/")
    kiosk.wait_for_selector("#screen-login:not([hidden])")
    kiosk.fill("#enrol-code", code)
    kiosk.click("#enrol-form button[type=submit]")
    kiosk.wait_for_selector("#screen-start:not([hidden]) .tile", timeout=15000)
    wait_until("the kiosk's name", lambda: kiosk.inner_text("#place") != "便民服务点")
    result["enrolled_place"] = kiosk.inner_text("#place")
    # Camera set-up right after enrolment: each camera previewed, the choice kept.
    kiosk.wait_for_selector("#camera-setup #camera-save", timeout=10000)
    wait_until("a camera preview playing", lambda: kiosk.evaluate(
        "[...document.querySelectorAll('#camera-setup video')].some(v => v.videoWidth > 0)"))
    result["camera_labels"] = kiosk.eval_on_selector_all(
        "#camera-setup video", "els => els.map(e => e.dataset.label)")
    kiosk.screenshot(path=str(shots / "kiosk-camera-setup.png"))
    kiosk.click("#camera-save")
    result["face_camera_kept"] = kiosk.evaluate("localStorage.getItem('vw.face_camera')")
    kiosk.fill("#search", "交养老保险")
    kiosk.click("#search-form button[type=submit]")
    kiosk.click("#results .tile >> nth=0")
    kiosk.wait_for_selector("#screen-materials:not([hidden])")
    kiosk.wait_for_selector("#guide-qr img", timeout=5000)
    result["guide_qr_loaded"] = bool(kiosk.evaluate(
        "document.querySelector('#guide-qr img').complete && "
        "document.querySelector('#guide-qr img').naturalWidth > 0"))
    kiosk.screenshot(path=str(shots / "kiosk-materials-qr.png"))
    kiosk.click("#join")
    kiosk.wait_for_selector("#screen-queue:not([hidden])")

    clerk_ctx = browser.new_context()
    watch.attach(clerk_ctx)
    clerk = clerk_ctx.new_page()
    clerk.goto(f"{stack.base_url}/clerk/")
    clerk.wait_for_selector("#login:not([hidden])")
    clerk.fill("#username", "e2eclerk")
    clerk.fill("#password", "welcome2026x")  # the password the admin gave
    clerk.click("#login-form button[type=submit]")
    clerk.wait_for_selector("#status-box:not([hidden])")
    result["paused_buttons"] = clerk.evaluate(
        "[...document.querySelectorAll('#status-box button')].filter(b => !b.hidden)"
        ".map(b => b.textContent)")
    clerk_ready(clerk)
    result["ready_buttons"] = clerk.evaluate(
        "[...document.querySelectorAll('#status-box button')].filter(b => !b.hidden)"
        ".map(b => b.textContent)")
    clerk.wait_for_selector("#offer:not([hidden])", timeout=15000)
    result["new_clerk_offer"] = clerk.inner_text("#offer")
    result["countdown_drawn"] = clerk.inner_text("#offer-count")
    clerk.click("#accept")
    kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=15000)
    result["new_terminal_in_call"] = True
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])", timeout=15000)
    clerk.click("#wrapup-done")
    clerk.wait_for_selector("#idle:not([hidden])", timeout=15000)
    wait_until("the clerk's figures today", lambda: "接听 1 次" in (
        clerk.text_content("#today") or ""), timeout_s=15)
    result["clerk_today"] = clerk.inner_text("#today")
    clerk.screenshot(path=str(shots / "clerk-today.png"))


def run(stack: Stack, browser: Browser, watch: Watch, out: Path, result: dict[str, Any]) -> None:
    shots = out / "screens"
    shots.mkdir(parents=True, exist_ok=True)
    y4m = make_y4m(out / "cam.y4m")
    pages: dict[str, Any] = {}
    supervise(stack, browser, watch, shots, y4m, pages)
    result.update({k: v for k, v in pages.items() if not isinstance(v, Page)})
    administer(stack, browser, watch, shots, result)


def browse(out: Path, result: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="e2e-ops-") as tmp, \
            running_stack(Path(tmp) / "stack") as stack, sync_playwright() as pw:
        y4m = make_y4m(out / "cam.y4m")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m))
        watch = Watch()
        try:
            run(stack, browser, watch, out, result)
        finally:
            result["outside_requests"] = watch.outside()
            result["page_errors"] = watch.page_errors
            with contextlib.suppress(Exception):  # the scenario's own error wins
                browser.close()


if __name__ == "__main__":
    sys.exit(scenario_main(browse))

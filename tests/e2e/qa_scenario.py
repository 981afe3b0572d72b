"""The QA browser scenario, run inside `unshare -n` by tests/e2e/test_qa_pages.py.

`python -m tests.e2e.qa_scenario --out DIR` brings the stack up in the private network
namespace, puts a recorded call with its case in it, and drives the QA page in Debian's
Chromium: log in, search, give a purpose, watch (frames advance), seek from the time
line, capture the picture the page shows; a clerk and a terminal try every QA route.
Writes DIR/result.json (and DIR/replay-frame.png, DIR/screens).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from playwright.sync_api import BrowserContext, Page, sync_playwright

from approval.store import make_store
from core.records import make_engine
from core.settings import Settings
from signaling.policy import ROUTES
from testkit.recordings import RecordedCall, make_recorded_call
from tests.e2e.pages import Watch, open_case_as_reviewer, wait_until
from tests.e2e.stack import (
    CHROMIUM,
    TERMINAL_TOKEN,
    Stack,
    chromium_args,
    in_private_netns,
    running_stack,
)

RECORDING_S = 8.0


def seed_recording(stack: Stack) -> RecordedCall:
    settings = replace(Settings.from_env(stack.env), storage_root=stack.storage_root)

    async def make() -> RecordedCall:
        engine = make_engine(settings.database_url)
        redis = aioredis.from_url(settings.redis_url)
        try:
            return await make_recorded_call(
                engine, settings.storage_root, settings.evidence_keys, seconds=RECORDING_S,
                segment_s=2.0, store=make_store(engine, settings), redis=redis)
        finally:
            await redis.aclose()
            await engine.dispose()

    return asyncio.run(make())


def frames(page: Page) -> int:
    return int(page.evaluate("(window.__replay || {}).frames || 0"))


def login_qa(context: BrowserContext, base: str, username: str = "qa1") -> Page:
    page = context.new_page()
    page.goto(f"{base}/qa/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#username", username)
    page.fill("#password", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#view-search:not([hidden])")
    return page


def qa_routes_as(page: Page) -> dict[str, int]:
    """What every QA route answers this page's session (from the browser itself)."""
    paths = [(m, p.replace("{call_id}", "x").replace("{access_id}", "1")
              .replace("{flag_id}", "1").replace("{hold_id}", "1")
              .replace("{case_no}", "20260101-ABCDEF01"))
             for m, p in ROUTES if p.startswith("/api/qa/")]
    out: dict[str, int] = page.evaluate("""async (paths) => {
        const out = {};
        for (const [method, path] of paths) {
          const r = await fetch(path, { method, credentials: "same-origin",
            headers: { "Content-Type": "application/json" },
            body: method === "GET" ? undefined : "{}" });
          out[method + " " + path] = r.status;
        }
        return out;
    }""", paths)
    return out


def run(stack: Stack, call: RecordedCall, out: Path, result: dict[str, Any], watch: Watch,
        browser: Any) -> None:
    shots = out / "screens"
    shots.mkdir(parents=True, exist_ok=True)
    result["case_no"], result["call_id"] = call.case_no, call.call_id
    qa_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    qa_ctx.set_default_timeout(15000)
    watch.attach(qa_ctx)
    qa = login_qa(qa_ctx, stack.base_url)
    qa.fill("#search-form input[name=case_no]", call.case_no or "")
    qa.click("#search-form button[type=submit]")
    wait_until("one search result", lambda: qa.locator(
        "#results-table tbody tr.row").count() == 1)
    result["search_row"] = qa.inner_text("#results-table tbody tr.row")
    result["page_info"] = qa.inner_text("#page-info")
    qa.screenshot(path=str(shots / "qa-search.png"))
    qa.click("#results-table tbody tr.row")
    qa.wait_for_selector("#view-call:not([hidden]) #purpose:not([hidden])")
    result["integrity"] = wait_until("the integrity line", lambda: qa.inner_text(
        "#integrity").strip())
    result["player_hidden_before_purpose"] = qa.is_hidden("#player")
    qa.check("input[name=purpose][value=抽查]")
    qa.click("#play")
    wait_until("replay frames", lambda: frames(qa) >= 15, 20)
    started = frames(qa)
    wait_until("frames advancing", lambda: frames(qa) >= started + 10, 10)
    result["frames_seen"] = frames(qa)
    clicked = qa.evaluate("window.__replay.clickedAt")
    first = qa.evaluate("window.__replay.firstFrameAt")
    result["click_to_first_frame_s"] = round((first - clicked) / 1000, 3)
    result["replay_marks"] = qa.evaluate(
        "({clicked: window.__replay.clickedMark, ...window.__replay.marks})")
    data_url = qa.evaluate("""() => {
        const v = document.getElementById('video');
        const c = document.createElement('canvas');
        c.width = v.videoWidth; c.height = v.videoHeight;
        c.getContext('2d').drawImage(v, 0, 0);
        return c.toDataURL('image/png');
    }""")
    (out / "replay-frame.png").write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
    qa.screenshot(path=str(shots / "qa-replay.png"))
    # The time line seeks the video: to the capture (1 s in), then beyond what is loaded.
    qa.click("#timeline li[data-kind=capture] button")
    wait_until("seeked to the capture", lambda: abs(
        qa.evaluate("document.getElementById('video').currentTime") - 1.0) < 0.6, 10)
    qa.evaluate(f"document.getElementById('video').currentTime = {RECORDING_S - 1.5}")
    wait_until("plays near the end", lambda: qa.evaluate(
        "document.getElementById('video').currentTime") >= RECORDING_S - 1.4, 15)
    result["played_to_s"] = qa.evaluate("document.getElementById('video').currentTime")
    # The reviewer who returns the case sends it to QA as a 问题件 in the same step.
    rev_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    rev_ctx.set_default_timeout(15000)
    watch.attach(rev_ctx)
    reviewer = rev_ctx.new_page()
    # Opened from the department's list it is not yet assigned: the page says to claim it.
    open_case_as_reviewer(reviewer, stack.base_url, call.case_no or "")
    reviewer.wait_for_selector("#decide-claim-hint:not([hidden])")
    result["reviewer_decide_hidden_before_claim"] = reviewer.is_hidden("#decide")
    reviewer.click("#claim")
    reviewer.wait_for_selector(f"#held li:has-text('{call.case_no}')")
    reviewer.wait_for_selector("#decide:not([hidden])")
    reviewer.fill("#decide textarea[name=comment]", "受理时未核对户口簿")
    reviewer.check("#decide-flag")
    reviewer.select_option("#decide-flag-category", "材料问题")
    reviewer.click("#decide button[value=return]")
    try:
        wait_until("returned and flagged",
                   lambda: "已登记问题件" in reviewer.inner_text("#decided"))
    finally:
        reviewer.screenshot(path=str(shots / "reviewer-returned.png"))
        result["reviewer_error"] = reviewer.inner_text("#decide-error")
    result["reviewer_decided"] = reviewer.inner_text("#decided")
    access_id = qa.evaluate("window.__replay.accessId")
    qa.click("a[href='#search']")  # leaving the replay closes the access
    qa.wait_for_selector("#view-search:not([hidden])")
    time.sleep(0.5)
    admin_ctx = browser.new_context()
    watch.attach(admin_ctx)
    admin = login_qa(admin_ctx, stack.base_url, "admin")
    log = admin.evaluate("async () => (await (await fetch('/api/qa/access?viewer=qa1')).json())")
    row = next((r for r in log["rows"] if r["id"] == access_id), None)
    result["access_row"] = row
    admin.click("a[href='#flags']")
    admin.wait_for_selector("#flag-list li h3")
    result["flag_board"] = admin.inner_text("#flag-list")
    admin.screenshot(path=str(shots / "qa-flags.png"))
    admin.click("#tab-access")
    admin.wait_for_selector("#access-table tbody tr")
    result["access_table"] = admin.inner_text("#access-table tbody")
    admin.screenshot(path=str(shots / "qa-access-log.png"))
    # A clerk and a terminal: every QA route is refused.
    clerk_ctx = browser.new_context()
    clerk = clerk_ctx.new_page()
    clerk.goto(f"{stack.base_url}/clerk/")
    clerk.evaluate("""async () => fetch('/api/login', { method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: 'clerk1', password: 'demo1234' }) })""")
    result["clerk_qa_routes"] = qa_routes_as(clerk)
    clerk.goto(f"{stack.base_url}/qa/")
    clerk.wait_for_selector("#login:not([hidden])")
    result["clerk_qa_page"] = clerk.inner_text("#login-error")
    term_ctx = browser.new_context()
    term = term_ctx.new_page()
    term.goto(f"{stack.base_url}/terminal/?token={TERMINAL_TOKEN}")
    term.wait_for_selector("#screen-start:not([hidden])")
    result["terminal_qa_routes"] = qa_routes_as(term)


def browse(stack: Stack, call: RecordedCall, out: Path, result: dict[str, Any],
           pw: Any) -> None:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(Path("/dev/null")))
    watch = Watch()
    try:
        run(stack, call, out, result, watch, browser)
    finally:
        result["outside_requests"] = watch.outside()
        result["page_errors"] = watch.page_errors
        with contextlib.suppress(Exception):  # the scenario's own error wins
            browser.close()


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
        with tempfile.TemporaryDirectory(prefix="e2e-qa-") as tmp, \
                running_stack(Path(tmp) / "stack") as stack:
            call = seed_recording(stack)  # before Playwright runs its own event loop
            with sync_playwright() as pw:
                browse(stack, call, out, result, pw)
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

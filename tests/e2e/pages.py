"""Playwright helpers shared by the scenario and the set-up-time benchmark."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page

from tests.e2e.stack import TERMINAL_TOKEN

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Watch:
    """Every URL a context requested, the ones not found, and every uncaught page error."""

    urls: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda req: self.urls.append(req.url))
        context.on("response", lambda res: self.not_found.append(res.url)
                   if res.status == 404 else None)
        context.on("page", self.attach_page)

    def attach_page(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def outside(self) -> list[str]:
        bad = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if parts.hostname not in LOCAL_HOSTS:
                bad.append(url)
        return bad


def wait_until(what: str, check: Any, timeout_s: float = 15.0, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")


def frames(page: Page, name: str) -> int:
    return int(page.evaluate(f"(window.__frames || {{}})[{name!r}] || 0"))


def frames_advance(page: Page, name: str, at_least: int = 10, timeout_s: float = 20.0) -> int:
    """Waits until the named <video> decoded `at_least` new frames; returns the count."""
    start = frames(page, name)
    wait_until(f"{name} frames advancing", lambda: frames(page, name) >= start + at_least,
               timeout_s)
    return frames(page, name) - start


def open_kiosk(context: BrowserContext, base: str, extra: str = "") -> Page:
    page = context.new_page()
    page.goto(f"{base}/terminal/?token={TERMINAL_TOKEN}{extra}")
    page.wait_for_selector("#screen-start:not([hidden]) .tile")
    return page


def open_clerk(context: BrowserContext, base: str, username: str = "clerk1") -> Page:
    page = context.new_page()
    page.goto(f"{base}/clerk/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#username", username)
    page.fill("#password", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#status-box:not([hidden])")
    return page


def open_case_as_reviewer(page: Page, base: str, case_no: str,
                          username: str = "reviewer_town") -> None:
    """Log the reviewer in on `page` and open the case from the waiting list."""
    page.goto(f"{base}/reviewer/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#desk:not([hidden])")
    page.click(f"#waiting li:has-text('{case_no}')")


def kiosk_join(kiosk: Page, words: str = "交养老保险") -> None:
    kiosk.fill("#search", words)
    kiosk.click("#search-form button[type=submit]")
    kiosk.click("#results .tile >> nth=0")
    kiosk.wait_for_selector("#screen-materials:not([hidden])")
    kiosk.click("#join")
    kiosk.wait_for_selector("#screen-queue:not([hidden])")
    wait_until("a queue position", lambda: kiosk.inner_text("#position") != "–")


def clerk_ready(clerk: Page) -> None:
    clerk.click("#ready")
    wait_until("clerk ready", lambda: clerk.inner_text("#status") == "就绪")


def wait_offer(clerk: Page, timeout_s: float = 15.0) -> None:
    clerk.wait_for_selector("#offer:not([hidden])", timeout=timeout_s * 1000)


def rate_visit(kiosk: Page, rating: str = "very_satisfied") -> None:
    """After a call the kiosk asks 「您对这次办事满意吗？」: one tap, and the dialog goes."""
    kiosk.click(f"#rating .face[data-rating={rating}]", timeout=15000)
    kiosk.wait_for_selector("#rating", state="detached", timeout=10000)


def verify_by_hand(clerk: Page, text: str = "当面核对了身份证原件") -> None:
    """The clerk's audited 人工核验 when no identity check is run in a visit."""
    clerk.click("#id-manual")
    clerk.wait_for_selector("#id-override:not([hidden])", timeout=10000)
    clerk.fill("#id-text", text)
    clerk.click("#id-override button[type=submit]")
    clerk.wait_for_selector("#id-override", state="hidden", timeout=10000)

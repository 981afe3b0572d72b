"""Benchmark: call set-up time in the browser, from the clerk's accept click to the first
remote video frame on each page (kiosk: the clerk's camera; console: the applicant's face).

Runs itself inside a loopback-only network namespace (`unshare -n`, needs root) with
private Redis + PostgreSQL, one signaling node, one media worker and Debian's Chromium
(two contexts: kiosk and clerk console). Prints p50/p90 over N calls; last line: JSON.

    .venv/bin/python bench/setup_time.py --calls 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.e2e.pages import (  # noqa: E402
    clerk_ready,
    kiosk_join,
    open_clerk,
    open_kiosk,
    rate_visit,
    wait_offer,
    wait_until,
)
from tests.e2e.stack import (  # noqa: E402
    CHROMIUM,
    FACES,
    chromium_args,
    in_private_netns,
    make_y4m,
    running_stack,
)

INSIDE = "VW_BENCH_IN_NETNS"


def first_frame(page: Page, name: str) -> float | None:
    value = page.evaluate(f"(window.__firstFrameAt || {{}})[{name!r}] || null")
    return None if value is None else float(value)


def one_call(kiosk: Page, clerk: Page) -> tuple[float, float]:
    kiosk_join(kiosk)
    clerk_ready(clerk)
    wait_offer(clerk)
    for page in (kiosk, clerk):
        page.evaluate("window.__firstFrameAt = {}")
    clerk.click("#accept")
    clicked = float(wait_until("accept click time", lambda: clerk.evaluate(
        "window.__acceptClickAt || null")))
    kiosk_at = wait_until("kiosk first frame", lambda: first_frame(kiosk, "clerk"), 20)
    clerk_at = wait_until("console first frame", lambda: first_frame(clerk, "face"), 20)
    clerk.evaluate("window.__acceptClickAt = null")
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])")
    clerk.click("#wrapup-done")
    clerk.wait_for_selector("#idle:not([hidden])")
    kiosk.wait_for_selector("#screen-ended:not([hidden])")
    rate_visit(kiosk)
    kiosk.click("#ended-home")
    return (kiosk_at - clicked) / 1000, (clerk_at - clicked) / 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(calls: int) -> dict[str, Any]:
    in_private_netns()
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp, \
            running_stack(Path(tmp) / "stack", offer_timeout_s=20) as stack, \
            sync_playwright() as pw:
        y4m = make_y4m(Path(tmp) / "face.y4m")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(y4m))
        try:
            kiosk = open_kiosk(browser.new_context(), stack.base_url)
            clerk = open_clerk(browser.new_context(), stack.base_url)
            kiosk_s: list[float] = []
            clerk_s: list[float] = []
            for i in range(calls):
                k, c = one_call(kiosk, clerk)
                kiosk_s.append(k)
                clerk_s.append(c)
                print(f"call {i + 1:2d}: kiosk {k:.3f} s, console {c:.3f} s", flush=True)
        finally:
            browser.close()
    both = [max(k, c) for k, c in zip(kiosk_s, clerk_s, strict=True)]
    return {
        "benchmark": "setup_time", "calls": calls,
        "kiosk_p50_s": round(statistics.median(kiosk_s), 3),
        "kiosk_p90_s": round(pct(kiosk_s, 0.9), 3),
        "console_p50_s": round(statistics.median(clerk_s), 3),
        "console_p90_s": round(pct(clerk_s, 0.9), 3),
        "both_p50_s": round(statistics.median(both), 3),
        "both_p90_s": round(pct(both, 0.9), 3),
        "goal_p50_s": 1.0,
        "goal_met": statistics.median(both) < 1.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(json.dumps({"benchmark": "setup_time", "skipped": f"no faces at {FACES}"}))
        return 0
    if os.environ.get(INSIDE) != "1":
        if os.geteuid() != 0:
            print(json.dumps({"benchmark": "setup_time",
                              "skipped": "needs root for a private network namespace"}))
            return 0
        env = {**os.environ, INSIDE: "1"}
        return subprocess.run(["unshare", "-n", "--", sys.executable, __file__,
                               "--calls", str(args.calls)], env=env, check=False).returncode
    result = run(args.calls)
    print(f"accept → first frame over {args.calls} calls: "
          f"kiosk p50 {result['kiosk_p50_s']} s p90 {result['kiosk_p90_s']} s; "
          f"console p50 {result['console_p50_s']} s p90 {result['console_p90_s']} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

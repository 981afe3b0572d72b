"""Benchmark: QA replay. Click → first frame in Chromium (p50), the media worker's CPU per
concurrent viewer with the per-viewer burn-in, and how many viewers one core serves at
full frame rate.

Runs itself inside a loopback-only network namespace (`unshare -n`, needs root) with
private Redis + PostgreSQL, one signaling node, one media worker and Debian's Chromium.
A recorded call is made without a call (testkit.recordings: a face photo drifting with
camera noise, so encoding costs what a real call's picture costs). Viewers beyond the browser
are HTTP clients reading the worker's stream as the page does (paced, real time); a
viewer keeps full frame rate when it receives one fragment (one second, 15 frames) per
second of wall time. Last line: JSON.

    .venv/bin/python bench/replay.py --clicks 10 --viewers 1,2,4,6,8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from approval.store import make_store  # noqa: E402
from core.records import make_engine  # noqa: E402
from core.replayticket import ReplayClaims, mint  # noqa: E402
from core.settings import Settings  # noqa: E402
from testkit.recordings import RecordedCall, make_recorded_call  # noqa: E402
from tests.e2e.pages import wait_until  # noqa: E402
from tests.e2e.stack import (  # noqa: E402
    CHROMIUM,
    FACES,
    Stack,
    chromium_args,
    in_private_netns,
    running_stack,
)

INSIDE = "VW_BENCH_IN_NETNS"
PHOTO = FACES / "obama-720p.jpg"  # a real face with a camera's noise: a call's real cost
RECORDING_S = 45.0
WARM_S = 9.0  # past the first burst (the worker renders a few seconds ahead at first)
WINDOW_S = 12.0


def seed(stack: Stack) -> RecordedCall:
    settings = replace(Settings.from_env(stack.env), storage_root=stack.storage_root)

    async def make() -> RecordedCall:
        engine = make_engine(settings.database_url)
        try:
            return await make_recorded_call(
                engine, settings.storage_root, settings.evidence_keys, seconds=RECORDING_S,
                segment_s=15.0, store=make_store(engine, settings),
                photo=PHOTO if PHOTO.is_file() else None)
        finally:
            await engine.dispose()

    return asyncio.run(make())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- click → first frame (Chromium) -----------------------------------------------------


def one_click(page: Page, call_id: str) -> float:
    page.evaluate("location.hash = '#search'")
    page.wait_for_selector("#view-search:not([hidden])")
    page.evaluate(f"location.hash = '#call={call_id}'")
    page.wait_for_selector("#view-call:not([hidden]) #purpose:not([hidden])")
    wait_until("detail loaded", lambda: page.inner_text("#integrity").strip())
    page.check("input[name=purpose][value=抽查]")
    page.click("#play")
    first = wait_until("first frame", lambda: page.evaluate(
        "(window.__replay || {}).firstFrameAt || null"), 20)
    clicked = page.evaluate("window.__replay.clickedAt")
    return (float(first) - float(clicked)) / 1000


def clicks(stack: Stack, call: RecordedCall, n: int) -> list[float]:
    out: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=chromium_args(Path("/dev/null")))
        try:
            page = browser.new_context().new_page()
            page.goto(f"{stack.base_url}/qa/")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("#username", "qa1")
            page.fill("#password", "demo1234")
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#view-search:not([hidden])")
            for i in range(n):
                took = one_click(page, call.call_id)
                out.append(took)
                print(f"click {i + 1:2d}: first frame after {took:.3f} s", flush=True)
        finally:
            browser.close()
    return out


# --- concurrent viewers (HTTP clients, paced as the page is) ----------------------------


async def viewer(url: str, ticket: str, stop_at: float, counts: list[float]) -> None:
    """Read one stream; note the wall time of each fragment ('moof') that arrives."""
    tail = b""
    async with aiohttp.ClientSession() as http, http.get(
            url, params={"from": "0"}, headers={"Authorization": f"Bearer {ticket}"},
            timeout=aiohttp.ClientTimeout(total=RECORDING_S + 60)) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_any():
            data = tail + chunk
            counts.extend([time.monotonic()] * data.count(b"moof"))
            tail = data[-3:]
            if time.monotonic() >= stop_at:
                break


def worker_cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


async def concurrent(stack: Stack, call: RecordedCall, n: int,
                     idle_cores: float) -> dict[str, Any]:
    settings = Settings.from_env(stack.env)
    url = f"{stack.media_url}/replay/stream"
    tickets = [mint(settings.join_token_secret, ReplayClaims(
        call.call_id, i, f"bench{i}", f"压测观看人 {i}", "replay", time.time() + 600))
        for i in range(n)]
    begin = time.monotonic()
    stop_at = begin + WARM_S + WINDOW_S
    counts: list[list[float]] = [[] for _ in range(n)]
    tasks = [asyncio.create_task(viewer(url, t, stop_at, c)) for t, c in zip(
        tickets, counts, strict=True)]
    await asyncio.sleep(WARM_S)
    pid = stack.procs["media"].pid
    cpu0, wall0 = worker_cpu(pid), time.monotonic()
    await asyncio.sleep(WINDOW_S)
    cpu1, wall1 = worker_cpu(pid), time.monotonic()
    await asyncio.gather(*tasks)
    rates = [sum(1 for at in c if wall0 <= at <= wall1) / (wall1 - wall0) for c in counts]
    cpu = (cpu1 - cpu0) / (wall1 - wall0)
    return {"viewers": n, "worker_cpu_cores": round(cpu, 3),
            "cpu_per_viewer": round(max(0.0, cpu - idle_cores) / n, 4),
            "slowest_real_time_ratio": round(min(rates), 3),
            "full_rate": min(rates) >= 0.9}


def run(n_clicks: int, viewer_counts: list[int]) -> dict[str, Any]:
    in_private_netns()
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp, \
            running_stack(Path(tmp) / "stack") as stack:
        stack.env["QA_REPLAY_MAX_VIEWERS"] = str(max(viewer_counts) + 2)
        stack.start("media")
        call = seed(stack)
        first = clicks(stack, call, n_clicks)
        idle = worker_cpu(stack.procs["media"].pid)
        time.sleep(2.0)
        idle_cores = (worker_cpu(stack.procs["media"].pid) - idle) / 2.0
        loads = []
        for n in viewer_counts:
            figures = asyncio.run(concurrent(stack, call, n, idle_cores))
            loads.append(figures)
            print(f"{n} viewers: worker {figures['worker_cpu_cores']} cores, "
                  f"{figures['cpu_per_viewer']} core each, slowest at "
                  f"{figures['slowest_real_time_ratio']}x real time", flush=True)
    busy = [f for f in loads if f["viewers"] >= 2 and f["full_rate"]] or loads
    per_viewer = statistics.median(f["cpu_per_viewer"] for f in busy)
    full = [f["viewers"] for f in loads if f["full_rate"]]
    cores = os.cpu_count() or 1
    p50 = statistics.median(first)
    per_core = round(1 / per_viewer, 1) if per_viewer > 0 else None
    return {
        "benchmark": "replay", "clicks": n_clicks,
        "click_to_first_frame_p50_s": round(p50, 3),
        "click_to_first_frame_p90_s": round(pct(first, 0.9), 3),
        "cpu_per_viewer_core": round(per_viewer, 4), "viewers_per_core": per_core,
        "max_full_rate_viewers_measured": max(full) if full else 0, "cores": cores,
        "worker_idle_cores": round(idle_cores, 4), "loads": loads,
        "goal_first_frame_s": 1.5, "goal_viewers_per_core": 4,
        "goal_met": p50 <= 1.5 and per_core is not None and per_core >= 4,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--viewers", default="1,2,4,6,8")
    args = parser.parse_args()
    counts = [int(v) for v in args.viewers.split(",") if v]
    if os.environ.get(INSIDE) != "1":
        if os.geteuid() != 0:
            print(json.dumps({"benchmark": "replay",
                              "skipped": "needs root for a private network namespace"}))
            return 0
        env = {**os.environ, INSIDE: "1"}
        return subprocess.run(["unshare", "-n", "--", sys.executable, __file__, "--clicks",
                               str(args.clicks), "--viewers", args.viewers], env=env,
                              check=False).returncode
    result = run(args.clicks, counts)
    print(f"click → first frame over {args.clicks} replays: p50 "
          f"{result['click_to_first_frame_p50_s']} s, p90 "
          f"{result['click_to_first_frame_p90_s']} s; {result['cpu_per_viewer_core']} core "
          f"per viewer ({result['viewers_per_core']} viewers per core); up to "
          f"{result['max_full_rate_viewers_measured']} concurrent viewers measured at full "
          f"frame rate on {result['cores']} cores")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the capture panel on a real worker with real aiortc peers (issue 14).

Starts private Redis + PostgreSQL and an in-process media worker with a one-process
verification pool (recording off, so the figures are the panel's). The kiosk's document
camera sends a generated A4 page at 640x360 (a conversational size); its stills are the same
scene at 1920x1080. Measures:

- still → flattened page shown: POST of the 1080p still until the flattened page has been
  fetched back, as the console does (p50, p95);
- guidance: (a) frame → notice, from the judged frame reaching the worker to the kiosk's
  notice leaving Redis (the last WebSocket hop to the page is not included), for every
  notice and for the one that first says the page is good after a change; (b) change → words:
  the camera's picture switches from an empty desk to the page until the kiosk's words say
  the page is good (includes the video path and up to one sampling interval);
- worker CPU per open panel: the process's and the pool's CPU with the panel open minus
  the same span with it closed (the peers run in this process in both spans), once with
  the page lying still (unchanged frames are not judged again) and once with it sliding
  a few pixels every frame (the worst case: judged at most twice a second; its baseline is
  the same moving picture with the panel closed);
- the flattened A4 page's width in px.

    .venv/bin/python bench/scan_live.py --stills 10 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from aiortc import MediaStreamTrack  # noqa: E402
from av import VideoFrame  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from core import keys  # noqa: E402
from core.clock import wall  # noqa: E402
from core.fanout import parse  # noqa: E402
from core.messages import MediaJoin  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.records import make_engine  # noqa: E402
from core.settings import Settings  # noqa: E402
from media.app import HUB, create_app  # noqa: E402
from media.doc_capture_http import DOCS  # noqa: E402
from signaling.placement import CallStart, WorkerPlacement  # noqa: E402
from testkit.localstack import free_port, private_servers  # noqa: E402
from testkit.synth_doc import make_frame  # noqa: E402
from testkit.synth_scene import empty_scene  # noqa: E402
from tests.media.peers import (  # noqa: E402
    GREEN,
    RED,
    ToneTrack,
    clerk_lines,
    colour_track,
    join,
    terminal_lines,
    until,
)

LIVE = (640, 360)
STILL = (1920, 1080)
VIDEO_CLOCK = 90000


class SwitchTrack(MediaStreamTrack):
    """30 fps video of whichever picture is current (the bench switches it)."""

    kind = "video"

    def __init__(self, picture: NDArray[np.uint8]) -> None:
        super().__init__()
        self.picture = picture
        self.moving = False  # the page slides a few px each frame: every sample is judged
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.time()
        await asyncio.sleep(max(0.0, self._start + self._count / 30 - time.time()))
        picture = self.picture
        if self.moving:
            picture = np.ascontiguousarray(np.roll(picture, ((self._count % 9) - 4) * 6, axis=1))
        frame = VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / 30)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


def _rgb(bgr: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_BGR2RGB), np.uint8)


def _jpeg(bgr: NDArray[np.uint8]) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.resize(bgr, STILL, interpolation=cv2.INTER_CUBIC),
                            [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(data)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1) if s else float("nan")


class Notices:
    def __init__(self) -> None:
        self.got: list[tuple[float, str, dict[str, Any]]] = []

    async def listen(self, redis: aioredis.Redis) -> None:
        pubsub = redis.pubsub()
        await pubsub.subscribe(keys.events_channel())
        try:
            async for msg in pubsub.listen():
                if msg["type"] == "message":
                    _, target, text = parse(msg["data"])
                    with contextlib.suppress(ValueError):
                        self.got.append((time.time(), target, json.loads(text)))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # newer redis-py types it

    def kiosk(self, kind: str, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, target, m in self.got
                if t >= since and target.startswith("terminal:") and m.get("type") == kind]


def hub_panel_judged(server: TestServer) -> int:
    panel = server.app[DOCS].panels.get("bench-scan")
    return panel.sampled if panel is not None else 0


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


async def _post(http: aiohttp.ClientSession, url: str, j: MediaJoin,
                **kw: Any) -> dict[str, Any]:
    async with http.post(url, headers={"Authorization": f"Bearer {j.token}",
                                       **kw.pop("headers", {})}, **kw) as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def run(settings: Settings, stills: int, seconds: float, changes: int = 10
              ) -> dict[str, Any]:
    jitter = random.Random(7)
    server = TestServer(create_app(settings), host="127.0.0.1", port=settings.media_port)
    await server.start_server()
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    engine = make_engine(settings.database_url)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    notices = Notices()
    listener = asyncio.create_task(notices.listen(redis))
    page = make_frame(np.random.default_rng(3), "a4", "good").image
    empty = empty_scene(np.random.default_rng(5), "clutter")
    camera = SwitchTrack(_rgb(page, LIVE))
    try:
        placement = WorkerPlacement(settings, redis, engine, http, wall)
        joins = await placement.start_call(CallStart("bench-scan", "t-b", "HOUSE", "T-B", "村",
                                                     "clerk-b", "坐席"))
        term, clerk_join = joins["T-B"], joins["clerk-b"]
        assert term is not None and clerk_join is not None
        terminal = await join(settings.media_url, "bench-scan", term.token, terminal_lines(
            colour_track(RED), camera, ToneTrack(440)))
        clerk = await join(settings.media_url, "bench-scan", clerk_join.token, clerk_lines(
            colour_track(GREEN), ToneTrack(1000)))
        hub = server.app[HUB]
        await until(lambda: "bench-scan" in hub.calls
                    and len(hub.calls["bench-scan"].capture.snapshot()) >= 5,
                    what="document frames at the worker")
        pool_pids = list(getattr(hub.pool, "_pids", []))
        pids = [os.getpid(), *pool_pids]
        base = f"{settings.media_url}/calls/bench-scan/documents"
        # CPU with the panel closed, then open (the same peers in both spans)
        c0, t0 = _cpu(pids), time.monotonic()
        await asyncio.sleep(seconds)
        closed = (_cpu(pids) - c0) / (time.monotonic() - t0)
        await _post(http, f"{base}/panel", clerk_join, json={
            "open": True, "material_code": "form", "material_name": "申请表"})
        await asyncio.sleep(1.0)
        c0, p0, t0, since = _cpu(pids), _cpu(pool_pids), time.monotonic(), time.time()
        await asyncio.sleep(seconds)
        opened = (_cpu(pids) - c0) / (time.monotonic() - t0)
        pool_still = (_cpu(pool_pids) - p0) / (time.monotonic() - t0)
        sample_ms = [(t - m["frame_at"]) * 1000 for t, m in notices.kiosk("doc_guidance", since)]
        camera.moving = True
        judged0 = hub_panel_judged(server)
        c0, p0, t0 = _cpu(pids), _cpu(pool_pids), time.monotonic()
        await asyncio.sleep(seconds)
        moving = (_cpu(pids) - c0) / (time.monotonic() - t0)
        pool_moving = (_cpu(pool_pids) - p0) / (time.monotonic() - t0)
        judged = (hub_panel_judged(server) - judged0) / seconds
        # The same moving picture with the panel closed: a moving picture costs the peers'
        # encoder and the worker's decoder more whether or not a panel is open.
        await _post(http, f"{base}/panel", clerk_join, json={"open": False})
        await asyncio.sleep(1.0)
        c0, t0 = _cpu(pids), time.monotonic()
        await asyncio.sleep(seconds)
        closed_moving = (_cpu(pids) - c0) / (time.monotonic() - t0)
        camera.moving = False
        await _post(http, f"{base}/panel", clerk_join, json={
            "open": True, "material_code": "form", "material_name": "申请表"})
        await asyncio.sleep(1.0)
        # change → words: an empty desk, then the page
        change_ms: list[float] = []
        frame_ms: list[float] = []  # the page's first frame at the worker → the words
        for _ in range(changes):
            camera.picture = _rgb(empty, LIVE)
            # a random phase against the worker's sampling, else every change lands alike
            await asyncio.sleep(1.5 + jitter.uniform(0.0, 0.25))
            switched = time.time()
            camera.picture = _rgb(page, LIVE)
            while time.time() - switched < 5:
                ok = [(t, m) for t, m in notices.kiosk("doc_guidance", switched) if m["ready"]]
                if ok:
                    change_ms.append((ok[0][0] - switched) * 1000)
                    frame_ms.append((ok[0][0] - ok[0][1]["frame_at"]) * 1000)
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
        # still → flattened page shown
        shown_ms: list[float] = []
        widths: list[int] = []
        still = _jpeg(page)
        for _ in range(stills):
            take = await _post(http, f"{base}/take", clerk_join)
            started = time.perf_counter()
            answer = await _post(http, f"{base}/still?take_id={take['take_id']}", term,
                                 data=still, headers={"Content-Type": "image/jpeg"})
            if not answer.get("accepted"):
                print("refused:", answer, file=sys.stderr)
                continue
            async with http.get(answer["page_url"], headers={
                    "Authorization": f"Bearer {clerk_join.token}"}) as resp:
                await resp.read()
            shown_ms.append((time.perf_counter() - started) * 1000)
            widths.append(int(answer["flat_width"]))
        await _post(http, f"{base}/panel", clerk_join, json={"open": False})
        await terminal.close()
        await clerk.close()
        await placement.stop_call("bench-scan", "hangup")
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await http.close()
        await engine.dispose()
        await redis.aclose()
        await server.close()
    return {
        "still_to_page_shown_ms_p50": _pct(shown_ms, 0.5),
        "still_to_page_shown_ms_p95": _pct(shown_ms, 0.95),
        "guidance_frame_to_notice_ms_p50": _pct(sample_ms, 0.5),
        "guidance_frame_to_notice_ms_p95": _pct(sample_ms, 0.95),
        "guidance_frame_at_worker_to_words_ms_p50": _pct(frame_ms, 0.5),
        "guidance_frame_at_worker_to_words_ms_p95": _pct(frame_ms, 0.95),
        "guidance_change_to_words_ms_p50": _pct(change_ms, 0.5),
        "guidance_change_to_words_ms_p95": _pct(change_ms, 0.95),
        "cpu_core_share_panel_closed": round(closed, 4),
        "cpu_core_share_panel_open": round(opened, 4),
        "cpu_core_share_per_open_panel": round(opened - closed, 4),
        "cpu_core_share_panel_closed_page_moving": round(closed_moving, 4),
        "cpu_core_share_per_open_panel_page_moving": round(moving - closed_moving, 4),
        "pool_cpu_core_share_page_still": round(pool_still, 4),
        "pool_cpu_core_share_page_moving": round(pool_moving, 4),
        "frames_judged_per_s_page_moving": round(judged, 2),
        "a4_flat_px_across": min(widths) if widths else None,
        "stills": len(shown_ms), "guidance_notices": len(sample_ms),
        "goals": {"page_shown_p50_ms": 1000, "guidance_ms": 300, "cpu_per_panel": 0.05,
                  "a4_px": 1600},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stills", type=int, default=10)
    parser.add_argument("--changes", type=int, default=10, help="desk → page switches timed")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scan-live-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        with private_servers(folder) as (redis_server, pg):
            upgrade(pg.url)
            port = free_port()
            settings = replace(
                Settings.from_env({}), redis_url=redis_server.url, database_url=pg.url,
                storage_root=folder / "storage", evidence_key_dir=folder / "evidence",
                run_mode="local", media_host="127.0.0.1", media_port=port,
                media_ice_hosts=("127.0.0.1",), media_worker_id=f"bench-scan-{port}",
                media_verify_processes=1, media_record=False, media_max_captures=1000,
                join_token_secret="bench-join-secret")
            result = asyncio.run(run(settings, args.stills, args.seconds, args.changes))
    for k, v in result.items():
        if k != "goals":
            print(f"{k:40s} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

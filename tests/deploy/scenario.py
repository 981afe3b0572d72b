"""Multi-host scenarios, run inside the "district" host by tests/deploy/test_multihost.py.

`python -m tests.deploy.scenario CASE --village NETNS --office NETNS --out DIR` starts the
district's servers (`testkit.district`: nginx + TLS, two signaling nodes, two workers,
coturn, Redis, PostgreSQL) here, then drives a kiosk in Chromium on the village host and a
clerk console on the office host (Chromium runs in those namespaces; Playwright talks to
it over a pipe). It writes DIR/result.json; the pytest side checks it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from testkit.demo import DEMO_TERMINALS
from testkit.district import MEDIA_PORTS, District
from testkit.localstack import direct
from testkit.udp_delay import UdpDelayRelay
from tests.e2e.pages import (
    clerk_ready,
    frames_advance,
    kiosk_join,
    rate_visit,
    verify_by_hand,
    wait_offer,
    wait_until,
)
from tests.e2e.stack import TERMINAL_TOKEN, chromium_args, make_y4m

VILLAGE_ADDRESS, DISTRICT_VILLAGE_SIDE = "192.0.2.2", "192.0.2.1"
OFFICE_ADDRESS, DISTRICT_OFFICE_SIDE = "198.51.100.2", "198.51.100.1"
VALID_ID = "420115196503120027"
RELAY_PORT = 3479  # the delaying relay in front of coturn


@dataclass
class Run:
    district: District
    village: str
    office: str
    out: Path
    y4m: Path
    pw: Playwright
    result: dict[str, Any] = field(default_factory=dict)
    browsers: list[Browser] = field(default_factory=list)
    pages: dict[str, Page] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)

    def watch(self, page: Page, name: str) -> Page:
        self.pages[name] = page
        page.on("console", lambda m: self.console.append(f"{name} {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"{name} error: {e}"))
        return page

    def browser(self, netns: str) -> Browser:
        """Chromium on another host: a wrapper runs it inside that host's namespace."""
        wrapper = self.out / f"chromium-{netns}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} /usr/bin/chromium "$@"\n')
        wrapper.chmod(0o755)
        assert self.district.tls is not None
        args = [*chromium_args(self.y4m),
                f"--ignore-certificate-errors-spki-list={self.district.tls.spki_sha256}"]
        browser = self.pw.chromium.launch(executable_path=str(wrapper), args=args)
        self.browsers.append(browser)
        return browser

    def kiosk(self, token: str = TERMINAL_TOKEN, name: str = "kiosk") -> Page:
        page = self.watch(self.browser(self.village).new_context().new_page(), name)
        page.set_default_timeout(20000)
        page.goto(f"{self.district.base_url}/terminal/?token={token}")
        page.wait_for_selector("#screen-start:not([hidden]) .tile")
        return page

    def clerk(self, username: str = "clerk1") -> Page:
        page = self.watch(self.browser(self.office).new_context().new_page(), username)
        page.set_default_timeout(20000)
        page.goto(f"{self.district.base_url}/clerk/")
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#username", username)
        page.fill("#password", "demo1234")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#status-box:not([hidden])")
        return page

    def shot(self, page: Page, name: str) -> None:
        folder = self.out / "screens"
        folder.mkdir(exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"))


def call_up(run: Run) -> tuple[Page, Page]:
    """A kiosk on the village host and a clerk in the office, in a call through nginx."""
    kiosk, clerk = run.kiosk(), run.clerk()
    kiosk_join(kiosk)
    clerk_ready(clerk)
    wait_offer(clerk)
    clerk.click("#accept")
    kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=20000)
    clerk.wait_for_selector("#call:not([hidden])", timeout=20000)
    return kiosk, clerk


def selected_candidates(page: Page) -> list[str]:
    """Candidate types (host / srflx / relay) of the page's selected ICE pairs."""
    got: list[str] = page.evaluate("""async () => {
      const pc = (window.__kiosk || window.__console || {}).pc; if (!pc) return [];
      const stats = await pc.getStats(); const types = [];
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          const local = pair && stats.get(pair.localCandidateId);
          if (local) types.push(local.candidateType);
        }
      });
      return types; }""")
    return got


def case_visit(run: Run) -> None:
    """A whole visit from the village host over TLS (and, with --turn-only, via TURN)."""
    r = run.result
    kiosk, clerk = call_up(run)
    r["kiosk_clerk_frames"] = frames_advance(kiosk, "clerk")
    r["clerk_face_frames"] = frames_advance(clerk, "face")
    r["kiosk_candidates"] = selected_candidates(kiosk)
    run.shot(kiosk, "kiosk-call")
    clerk.click("#capture")
    clerk.wait_for_selector("#thumbs img", timeout=20000)
    clerk.fill("#case-name", "张三")
    clerk.fill("#case-id", VALID_ID)
    clerk.fill("#case-phone", "13800000000")
    for box in clerk.query_selector_all("#case-materials input[type=checkbox]"):
        box.check()
    clerk.check("input[name=outcome][value=放心回家]")
    verify_by_hand(clerk)
    clerk.click("#case-submit")
    wait_until("case number", lambda: "办件编号" in clerk.inner_text("#case-result"), 30)
    kiosk.wait_for_selector("#screen-done:not([hidden])", timeout=20000)
    r["kiosk_slip"] = kiosk.inner_text("#slip-no")
    r["clerk_result"] = clerk.inner_text("#case-result")
    run.shot(kiosk, "kiosk-done")
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])", timeout=20000)


def hello_nodes(page: Page) -> list[str]:
    """The signaling node of each `hello` the page got (the last is where it is now)."""
    got: list[str] = page.evaluate("window.__helloNodes || []")
    return got


def watch_hellos(page: Page) -> None:
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: page.evaluate(
        "(n) => (window.__helloNodes ||= []).push(n)", json.loads(frame)["node_id"])
        if isinstance(frame, str) and '"type":"hello"' in frame else None))


def reconnected_within(page: Page, node: str, timeout_s: float = 20.0) -> float:
    """Seconds until the page is connected to a node other than `node`."""
    started = time.monotonic()
    wait_until("reconnected to the other node", lambda: (hello_nodes(page) or [node])[-1]
               != node and page.is_hidden("#netlost"), timeout_s, 0.05)
    return round(time.monotonic() - started, 2)


def case_signaling_killed(run: Run) -> None:
    """kill -9 the signaling node a kiosk waits on, then (started again) the one it is in a
    call on: each time it reconnects through nginx to the other, keeps its place, and the
    call goes on."""
    r, district = run.result, run.district
    kiosk = run.kiosk()
    watch_hellos(kiosk)
    kiosk.reload()
    kiosk.wait_for_selector("#screen-start:not([hidden]) .tile")
    kiosk_join(kiosk)
    wait_until("hello seen", lambda: hello_nodes(kiosk))
    ticket = kiosk.evaluate("window.__kiosk.ticket")
    node = hello_nodes(kiosk)[-1]
    district.kill(node)
    r["waiting_reconnect_s"] = reconnected_within(kiosk, node)
    kiosk.wait_for_selector("#screen-queue:not([hidden])")
    wait_until("position again", lambda: kiosk.inner_text("#position") not in ("–", ""))
    r["ticket_kept"] = kiosk.evaluate("window.__kiosk.ticket") == ticket
    r["position_after"] = kiosk.inner_text("#position")
    district.start(node)
    clerk = run.clerk()
    clerk_ready(clerk)
    wait_offer(clerk)
    clerk.click("#accept")
    kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=20000)
    frames_advance(clerk, "face")
    node = hello_nodes(kiosk)[-1]
    district.kill(node)
    r["call_reconnect_s"] = reconnected_within(kiosk, node)
    r["screen_after_call_kill"] = kiosk.evaluate("document.body.dataset.screen")
    r["clerk_face_frames_after"] = frames_advance(clerk, "face")
    r["kiosk_clerk_frames_after"] = frames_advance(kiosk, "clerk")


def case_redis_restarted(run: Run) -> None:
    """Redis killed (kill -9) and started again on its append-only file while two
    applicants wait: their order and the clerks come back, and the next call works."""
    r, district = run.result, run.district
    first = run.kiosk()
    second = run.kiosk(DEMO_TERMINALS[1].token, "kiosk2")
    kiosk_join(first)
    kiosk_join(second)
    tickets = [k.evaluate("window.__kiosk.ticket") for k in (first, second)]
    clerk = run.clerk()
    time.sleep(1.5)  # appendfsync everysec: what is older than a second is on disk
    district.kill_redis()
    time.sleep(3)
    district.start_redis()
    r["tickets_kept"] = [k.evaluate("window.__kiosk.ticket") for k in (first, second)] == tickets
    clerk_ready(clerk)
    wait_offer(clerk, 30)
    r["offer_to"] = clerk.inner_text("#offer-place")
    clerk.click("#accept")
    first.wait_for_selector("#screen-call:not([hidden])", timeout=30000)
    r["second_screen"] = second.evaluate("document.body.dataset.screen")
    with contextlib.suppress(AssertionError):  # reported as it is when it does not move up
        wait_until("second moves up", lambda: second.inner_text("#position") == "0", 10)
    r["second_position"] = second.inner_text("#position")
    r["clerk_face_frames"] = frames_advance(clerk, "face")


def fill_case(clerk: Page) -> None:
    clerk.fill("#case-name", "张三")
    clerk.fill("#case-id", VALID_ID)
    clerk.fill("#case-phone", "13800000000")
    for box in clerk.query_selector_all("#case-materials input[type=checkbox]"):
        box.check()
    clerk.check("input[name=outcome][value=放心回家]")
    verify_by_hand(clerk)


def db_rows(district: District, sql: str) -> list[dict[str, Any]]:
    """Rows of a query on the district's PostgreSQL (the scenario runs on that host)."""
    import asyncio

    from sqlalchemy import text

    from core.records import make_engine

    assert district.postgres is not None

    async def query() -> list[dict[str, Any]]:
        engine = make_engine(district.postgres.url)  # type: ignore[union-attr]
        try:
            async with engine.connect() as conn:
                return [dict(r) for r in (await conn.execute(text(sql))).mappings()]
        finally:
            await engine.dispose()

    # Playwright's sync API runs an event loop in this thread: query from another one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, query()).result(timeout=30)


def case_postgres_stopped(run: Run) -> None:
    """PostgreSQL stopped for 30 s during a call: the clerk's submission is refused in plain
    words with the form kept, goes through once it is back; recording and approval go on."""
    r, district = run.result, run.district
    kiosk, clerk = call_up(run)
    frames_advance(clerk, "face")
    fill_case(clerk)
    district.stop_postgres()
    down_at = time.monotonic()
    clerk.click("#case-submit")
    wait_until("refusal", lambda: "没有保存" in clerk.inner_text("#case-result"), 30)
    r["refusal"] = clerk.inner_text("#case-result")
    r["form_kept"] = clerk.input_value("#case-name") == "张三" and \
        clerk.input_value("#case-id") == VALID_ID
    r["kiosk_screen_during"] = kiosk.evaluate("document.body.dataset.screen")
    r["frames_during"] = frames_advance(kiosk, "clerk")
    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    district.start_postgres()
    clerk.click("#case-submit")
    wait_until("case number", lambda: "办件编号" in clerk.inner_text("#case-result"), 30)
    kiosk.wait_for_selector("#screen-done:not([hidden])", timeout=20000)
    case_no = kiosk.inner_text("#slip-no").strip()
    r["case_no"] = case_no
    call_id = clerk.evaluate("window.__console.call.call_id")
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])", timeout=20000)
    # The approval worker's sweep puts the case's first task in its group's stream.
    wait_until("review task queued", lambda: district_redis_has_task(district, case_no), 30)
    rows = db_rows(district, f"select status from cases where case_no = '{case_no}'")
    r["case_status"] = rows[0]["status"] if rows else None
    wait_until("recording closed", lambda: db_rows(
        district, f"select recording_ended_at from media_calls where call_id = '{call_id}'"
    )[0]["recording_ended_at"] is not None, 30)
    segments = db_rows(district, "select seq, sha256, prev_hash, chain_hash from "
                       f"recording_segments where call_id = '{call_id}' order by seq")
    from media.recording import verify_chain

    r["segments"] = [s["seq"] for s in segments]
    r["chain_ok"] = verify_chain([(s["sha256"], s["prev_hash"], s["chain_hash"])
                                  for s in segments])


def segment_plays(path: Path) -> bool | str:
    """True when the segment's first picture decodes, else what went wrong."""
    import av

    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0), None) is not None or "no picture"
    except av.FFmpegError as exc:
        return f"{type(exc).__name__}: {exc} ({path.stat().st_size} bytes)"


def case_media_killed(run: Run) -> None:
    """kill -9 the media worker of a call: both sides are told and join the call on the
    other worker, with the same clerk, without queueing again; the recording of both parts
    plays and is one chain."""
    r, district = run.result, run.district
    seen: dict[str, float] = {}
    kiosk, clerk = run.kiosk(), run.clerk()
    kiosk_join(kiosk)
    clerk_ready(clerk)
    wait_offer(clerk)
    clerk.click("#accept")
    kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=20000)
    frames_advance(clerk, "face")
    call_id = clerk.evaluate("window.__console.call.call_id")
    worker = db_rows(district, f"select worker_id from media_calls where call_id = '{call_id}'"
                     )[0]["worker_id"]
    time.sleep(3)  # some recording on the first worker
    killed_at = time.monotonic()
    district.kill(worker)
    def told() -> bool:
        for name, page, probe in (("kiosk", kiosk, "window.__kiosk.call?.rejoin"),
                                  ("clerk", clerk, "window.__console.call?.rejoin")):
            if name not in seen and page.evaluate(f"!!({probe})"):
                seen[name] = time.monotonic()
        return {"kiosk", "clerk"} <= set(seen)

    wait_until("both told", told, 25, 0.1)
    r["kiosk_told_s"] = round(seen["kiosk"] - killed_at, 1)
    r["clerk_told_s"] = round(seen["clerk"] - killed_at, 1)
    r["clerk_face_frames_after"] = frames_advance(clerk, "face", timeout_s=30)
    r["kiosk_clerk_frames_after"] = frames_advance(kiosk, "clerk", timeout_s=30)
    r["same_call"] = clerk.evaluate("window.__console.call.call_id") == call_id
    r["kiosk_screen"] = kiosk.evaluate("document.body.dataset.screen")
    moved_to = db_rows(district, f"select worker_id from media_calls where call_id = '{call_id}'"
                       )[0]["worker_id"]
    r["moved"] = moved_to != worker
    time.sleep(3)  # some recording on the second worker
    clerk.click("#hangup")
    clerk.wait_for_selector("#wrapup:not([hidden])", timeout=20000)
    wait_until("recording closed", lambda: db_rows(
        district, f"select recording_ended_at from media_calls where call_id = '{call_id}'"
    )[0]["recording_ended_at"] is not None, 30)
    segments = db_rows(district, "select seq, path, sha256, prev_hash, chain_hash from "
                       f"recording_segments where call_id = '{call_id}' order by seq")
    from media.recording import verify_chain

    r["segments"] = [s["seq"] for s in segments]
    r["chain_ok"] = verify_chain([(s["sha256"], s["prev_hash"], s["chain_hash"])
                                  for s in segments])
    storage = district.folder / "storage"
    r["segments_play"] = [segment_plays(storage / s["path"]) for s in segments]
    shutil.copytree(storage / "recordings" / call_id, run.out / "recording")


STATS_JS = """async () => {
  const pc = (window.__console || {}).pc; if (!pc) return null;
  const t = pc.getTransceivers(); const out = {at: performance.now() / 1000};
  (await t[0].receiver.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') Object.assign(out, {
      frames: s.framesDecoded || 0, freezes: s.freezeCount || 0,
      freeze_s: s.totalFreezesDuration || 0, lost: s.packetsLost || 0,
      received: s.packetsReceived || 0});
  });
  (await t[3].receiver.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') Object.assign(out, {
      samples: s.totalSamplesReceived || 0, concealed: s.concealedSamples || 0});
  });
  return out; }"""


OUT_JS = """async () => {
  const pc = (window.__kiosk || {}).pc; if (!pc) return null;
  const out = {};
  (await pc.getTransceivers()[0].sender.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp') Object.assign(out, {enc: s.framesEncoded, sent: s.framesSent,
      kbps_target: Math.round((s.targetBitrate || 0) / 1000), key: s.keyFramesEncoded,
      pli: s.pliCount, nack: s.nackCount, limit: s.qualityLimitationReason,
      w: s.frameWidth});
    if (s.type === 'candidate-pair' && s.nominated) Object.assign(out, {
      avail_kbps: Math.round((s.availableOutgoingBitrate || 0) / 1000),
      rtt: s.currentRoundTripTime});
  });
  return out; }"""


def link_phase(clerk: Page, seconds: float) -> dict[str, float]:
    """What the clerk received of the applicant's face and voice over `seconds`."""
    a = clerk.evaluate(STATS_JS)
    time.sleep(seconds)
    b = clerk.evaluate(STATS_JS)
    dt = b["at"] - a["at"]
    packets = (b["received"] - a["received"]) + (b["lost"] - a["lost"])
    samples = max(1, b["samples"] - a["samples"])
    return {"fps": round((b["frames"] - a["frames"]) / dt, 1),
            "freezes": b["freezes"] - a["freezes"],
            "freeze_s": round(b["freeze_s"] - a["freeze_s"], 2),
            "video_loss_pct": round(100 * (b["lost"] - a["lost"]) / max(1, packets), 1),
            "audio_concealed_pct": round(100 * (b["concealed"] - a["concealed"]) / samples, 1)}


def village_device(run: Run) -> str:
    out = subprocess.run(["ip", "netns", "exec", run.village, "ip", "-o", "link"],
                         capture_output=True, text=True, check=True).stdout
    return next(line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
                if ": lo:" not in line)


def case_poor_link(run: Run) -> None:
    """The village uplink capped at 1 Mbit/s, then 5 % loss, then 200 ms more delay (a
    user-space relay in front of TURN), then cut for 5 s: the call stays usable, comes back
    by itself, and the recording marks the gap."""
    r, v = run.result, run.village
    relay = UdpDelayRelay((DISTRICT_VILLAGE_SIDE, RELAY_PORT), (DISTRICT_VILLAGE_SIDE, 3478))
    relay.start()
    # Only TURN (through the relay) gets through: every byte of media takes the bad link.
    on_host(v, "iptables", "-A", "OUTPUT", "-p", "udp", "-d", DISTRICT_VILLAGE_SIDE,
            "!", "--dport", str(RELAY_PORT), "-j", "DROP")
    try:
        kiosk, clerk = call_up(run)
        frames_advance(clerk, "face")
        phases: dict[str, dict[str, float]] = {"clean": link_phase(clerk, 8)}
        dev = village_device(run)
        on_host(v, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "1mbit",
                "burst", "32kbit", "latency", "400ms")
        phases["1mbit"] = link_phase(clerk, 10)
        loss = ["OUTPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
                "--probability", "0.05", "-j", "DROP"]
        on_host(v, "iptables", "-A", *loss)
        phases["1mbit_loss5"] = link_phase(clerk, 10)
        # A constant 200 ms more on top, from the start of a call (as on a long link: the
        # bandwidth estimate starts from it rather than seeing a sudden jump).
        clerk.click("#hangup")
        clerk.wait_for_selector("#wrapup:not([hidden])", timeout=20000)
        clerk.click("#wrapup-done")
        kiosk.wait_for_selector("#screen-ended:not([hidden])", timeout=20000)
        rate_visit(kiosk)
        kiosk.click("#ended-home")
        relay.set_delay(0.2, 0.0)
        kiosk_join(kiosk)
        wait_offer(clerk, 30)
        clerk.click("#accept")
        kiosk.wait_for_selector("#screen-call:not([hidden])", timeout=30000)
        time.sleep(5)  # the call settles on the slow link
        phases["1mbit_loss5_delay200"] = link_phase(clerk, 10)
        r["phases"] = phases
        relay.set_delay(0.0, 0.0)
        on_host(v, "iptables", "-D", *loss)
        on_host(v, "tc", "qdisc", "del", "dev", dev, "root")
        r["frames_after_bad_link"] = frames_advance(clerk, "face", timeout_s=90)
        call_id = clerk.evaluate("window.__console.call.call_id")
        for page, probe in ((kiosk, "window.__kiosk"), (clerk, "window.__console")):
            page.evaluate("""(probe) => { const t0 = performance.now(); window.__states = [];
              const pc = eval(probe).pc;
              pc.addEventListener('connectionstatechange', () => window.__states.push(
                [Math.round(performance.now() - t0), pc.connectionState])); }""", probe)
        # The link cut for 5 s, both ways.
        for chain, way in (("OUTPUT", "-d"), ("INPUT", "-s")):
            on_host(v, "iptables", "-I", chain, "1", way, DISTRICT_VILLAGE_SIDE, "-j", "DROP")
        time.sleep(5)
        for chain, way in (("OUTPUT", "-d"), ("INPUT", "-s")):
            on_host(v, "iptables", "-D", chain, way, DISTRICT_VILLAGE_SIDE, "-j", "DROP")
        back = time.monotonic()
        frames_advance(clerk, "face", timeout_s=60)
        r["back_after_cut_s"] = round(time.monotonic() - back, 1)
        r["states_after_cut"] = {"kiosk": kiosk.evaluate("window.__states"),
                                 "clerk": clerk.evaluate("window.__states")}
        r["kiosk_sender_after_cut"] = kiosk.evaluate(OUT_JS)
        r["kiosk_screen_after_cut"] = kiosk.evaluate("document.body.dataset.screen")
        r["kiosk_clerk_frames_after_cut"] = frames_advance(kiosk, "clerk", timeout_s=60)
        r["gap_frames"] = recording_gap_frames(run.district, call_id)
        r["same_call"] = clerk.evaluate("window.__console.call.call_id") == call_id
    finally:
        relay.stop()


def recording_gap_frames(district: District, call_id: str) -> int:
    """Frames the call's recording drew as a gap, from its worker's health page."""
    for port in MEDIA_PORTS.values():
        with contextlib.suppress(OSError, KeyError, TypeError), direct.open(
                f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return int(json.load(resp)["calls_detail"][call_id]["recording"]["gap_frames"])
    return -1


def district_redis_has_task(district: District, case_no: str) -> bool:
    import redis

    from core import keys

    assert district.redis is not None
    client = redis.Redis.from_url(district.redis.url, decode_responses=True)
    try:
        return any(str(m).startswith(case_no)
                   for m in client.smembers(keys.approval_queued()))
    finally:
        client.close()


def on_host(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, *argv], check=True, timeout=20,
                   capture_output=True)


def case_visit_turn_only(run: Run) -> None:
    """The village network lets no UDP through to the district but TURN's port: the call
    goes through coturn's relay."""
    on_host(run.village, "iptables", "-A", "OUTPUT", "-p", "udp", "-d", DISTRICT_VILLAGE_SIDE,
            "!", "--dport", "3478", "-j", "DROP")
    case_visit(run)


CASES: dict[str, Callable[[Run], None]] = {"visit": case_visit,
                                           "visit_turn_only": case_visit_turn_only,
                                           "signaling_killed": case_signaling_killed,
                                           "redis_restarted": case_redis_restarted,
                                           "postgres_stopped": case_postgres_stopped,
                                           "media_killed": case_media_killed,
                                           "poor_link": case_poor_link}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--village", required=True)
    parser.add_argument("--office", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timers", default="{}", help="JSON settings for the servers")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"ok": False, "case": args.case}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="district-") as tmp:
        district = District(Path(tmp) / "district", [DISTRICT_VILLAGE_SIDE, DISTRICT_OFFICE_SIDE],
                            json.loads(args.timers))
        try:
            district.start_all()
            y4m = make_y4m(Path(tmp) / "face.y4m")
            with sync_playwright() as pw:
                run = Run(district, args.village, args.office, out, y4m, pw, result)
                try:
                    CASES[args.case](run)
                except Exception:
                    for name, page in run.pages.items():
                        try:
                            run.shot(page, f"failure-{name}")
                        except Exception as exc:  # the failure itself is reported below
                            run.console.append(f"no screenshot of {name}: {exc}")
                    raise
                finally:
                    result["console"] = run.console[-200:]
                    for browser in run.browsers:
                        browser.close()
            result["ok"] = True
        except Exception as exc:  # the pytest side shows this
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["trace"] = traceback.format_exc()
            print(result["error"], file=sys.stderr)
        finally:
            for log in [*Path(district.folder).glob("*.log"),
                        *Path(district.folder).glob("nginx/*.log")]:
                (out / log.name).write_bytes(log.read_bytes()[-200_000:])
            district.close()
    result["wall_s"] = round(time.monotonic() - started, 1)
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())

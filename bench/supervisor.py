"""Benchmark: the supervisor's live view with 2,000 waiting terminals and 200 clerks
changing state.

Starts private Redis + PostgreSQL, one signaling node, a process holding 2,000 terminal
websockets (all waiting, over the 20 demo items) and 200 clerk websockets here that change
their pause reason every 1-3 s (a change the board must show). Measures, for each change,
the delay from sending it to a supervisor page's websocket receiving an update that shows
it (p50, p95), and the node's CPU over the same load with no page open and with 1 and
with 3 pages open (what the live view adds, per page). Last line: JSON.

    .venv/bin/python bench/supervisor.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402

from bench.routing import (  # noqa: E402
    add_people,
    connect_clerk,
    pct,
    raise_fd_limit,
    sessions,
    start_terminals,
    stop_terminals,
    terminal_session,
)
from core.migrate import upgrade  # noqa: E402
from signaling.auth import COOKIE, Session  # noqa: E402
from testkit.demo import seed_demo  # noqa: E402
from testkit.localstack import free_port, private_servers, wait_http  # noqa: E402

GOAL_P95_S = 2.0
GOAL_CPU_PER_PAGE = 0.05


async def churn(ws: aiohttp.ClientWebSocketResponse, username: str, rng: random.Random,
                sent: dict[tuple[str, str], float], stop: asyncio.Event) -> None:
    """Change this clerk's pause reason every 1-3 s; note when each change was sent."""
    seq = 0

    async def drain() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(drain())
    try:
        while not stop.is_set():
            seq += 1
            reason = f"暂离{seq}"
            sent[(username, reason)] = time.perf_counter()
            await ws.send_str(json.dumps({"type": "set_status", "status": "not_ready",
                                          "reason": reason}))
            try:
                async with asyncio.timeout(rng.uniform(1.0, 3.0)):
                    await stop.wait()
            except TimeoutError:
                pass
    finally:
        reader.cancel()


async def watch(url: str, sid: str, sent: dict[tuple[str, str], float],
                delays: list[float] | None, stop: asyncio.Event) -> int:
    """A supervisor page: read every message; with `delays`, time each change seen."""
    messages = 0
    async with aiohttp.ClientSession(headers={"Cookie": f"{COOKIE}={sid}"}) as client:
        ws = await client.ws_connect(f"{url}/ws/supervisor", heartbeat=None, max_msg_size=0)
        while not stop.is_set():
            try:
                async with asyncio.timeout(1.0):
                    frame = await ws.receive()
            except TimeoutError:
                continue
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"supervisor socket closed: {frame}")
            messages += 1
            now = time.perf_counter()
            msg = json.loads(frame.data)
            for c in msg.get("clerks") or []:
                at = sent.pop((c["username"], c["reason"]), None)
                if at is not None and delays is not None:
                    delays.append(now - at)
        await ws.close()
    return messages


async def window(proc: psutil.Process, seconds: float) -> float:
    c0, t0 = proc.cpu_times(), time.perf_counter()
    await asyncio.sleep(seconds)
    c1 = proc.cpu_times()
    return float(c1.user + c1.system - c0.user - c0.system) / (time.perf_counter() - t0)


async def run(args: argparse.Namespace, folder: Path, redis_url: str, pg_url: str
              ) -> dict[str, Any]:
    rng = random.Random(args.seed)
    await seed_demo(pg_url)
    skills = await add_people(pg_url, args.terminals, args.clerks, rng)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url,
           "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port), "OFFER_TIMEOUT_S": "30",
           "TERMINAL_GRACE_S": "60", "RUN_MODE": "local"}
    log = (folder / "signaling.log").open("wb")
    node = subprocess.Popen([sys.executable, "-m", "signaling"],  # noqa: ASYNC220
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=raise_fd_limit)
    try:
        await asyncio.to_thread(wait_http, f"{url}/healthz", 30, node, "signaling node")
        proc = psutil.Process(node.pid)
        term_sids = await sessions(redis_url, [terminal_session(i)
                                               for i in range(args.terminals)])
        holder = start_terminals(url, term_sids, True, folder)
        clerk_sids = await sessions(redis_url, [
            Session(kind="staff", who=u, role="clerk", display_name=u, region_code="420115",
                    skills=s, jurisdictions=["42"]) for u, s in skills.items()])
        (sup_sid, *more_sids) = await sessions(redis_url, [
            Session(kind="staff", who=f"duty{i}", role="supervisor", display_name="值班长",
                    region_code="420115") for i in range(3)])
        gate = asyncio.Semaphore(20)
        conns = await asyncio.gather(*(connect_clerk(url, sid, gate) for sid in clerk_sids))
        sent: dict[tuple[str, str], float] = {}
        stop = asyncio.Event()
        churners = [asyncio.create_task(churn(ws, u, random.Random(rng.random()), sent, stop))
                    for (_, ws), u in zip(conns, skills, strict=True)]
        await asyncio.sleep(3)
        cpu_none = await window(proc, args.seconds)
        print(f"no page open: node CPU {cpu_none:.3f} cores", flush=True)
        page_stop = asyncio.Event()
        sent.clear()
        seen: list[float] = []
        delays = seen
        pages = [asyncio.create_task(watch(url, sup_sid, sent, seen, page_stop))]
        await asyncio.sleep(3)
        seen.clear()
        cpu_one = await window(proc, args.seconds)
        delays = list(delays)  # the figures are of the one-page window
        print(f"1 page open: node CPU {cpu_one:.3f} cores; {len(delays)} changes seen, "
              f"p50 {pct(delays, 50):.2f} s, p95 {pct(delays, 95):.2f} s", flush=True)
        pages += [asyncio.create_task(watch(url, sid, sent, None, page_stop))
                  for sid in more_sids]
        await asyncio.sleep(3)
        cpu_three = await window(proc, args.seconds)
        print(f"3 pages open: node CPU {cpu_three:.3f} cores", flush=True)
        page_stop.set()
        counts = await asyncio.gather(*pages)
        stop.set()
        await asyncio.gather(*churners, return_exceptions=True)
        for client, ws in conns:
            await ws.close()
            await client.close()
        stop_terminals(holder)
    except BaseException:
        log.flush()
        errors = [ln for ln in (folder / "signaling.log").read_text().splitlines()
                  if '"level": "error"' in ln or "Error" in ln]
        sys.stderr.write("\n".join(errors[:5]) + "\n")
        raise
    finally:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        log.close()
    p50, p95 = pct(delays, 50), pct(delays, 95)
    first_page = cpu_one - cpu_none
    per_extra = (cpu_three - cpu_one) / 2
    return {
        "bench": "supervisor", "terminals": args.terminals, "clerks": args.clerks,
        "changes_seen": len(delays), "change_to_page_p50_s": round(p50, 3),
        "change_to_page_p95_s": round(p95, 3), "node_cpu_no_page": round(cpu_none, 3),
        "node_cpu_one_page": round(cpu_one, 3), "node_cpu_three_pages": round(cpu_three, 3),
        "cpu_first_page": round(first_page, 3), "cpu_each_further_page": round(per_extra, 3),
        "messages_first_page": counts[0], "window_s": args.seconds,
        "goal_p95_s": GOAL_P95_S, "goal_cpu_per_page": GOAL_CPU_PER_PAGE,
        "goal_met": p95 <= GOAL_P95_S and first_page <= GOAL_CPU_PER_PAGE,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--clerks", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0, help="each measuring window")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    raise_fd_limit()
    folder = Path(tempfile.mkdtemp(prefix="bench-supervisor-"))
    os.chmod(folder, 0o755)
    try:
        with private_servers(folder) as (redis_srv, pg):
            upgrade(pg.url)
            result = asyncio.run(run(args, folder, redis_srv.url, pg.url))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

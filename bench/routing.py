"""Benchmark: routing latency and memory per idle websocket of one signaling node.

Starts private Redis + PostgreSQL (migrated, seeded, plus the bench's own terminals and
clerks), one signaling node (`python -m signaling`) and a process holding the applicants'
terminal websockets. 2,000 applicants wait over the 20 demo items; 200 clerks (5 random
items each) on real websockets take calls and free up at random: after a call they go
not ready, then after a random pause send "ready". Reports p50 / p99 from sending
"ready" to the offer arriving on the clerk's websocket. Then 5,000 idle terminal
websockets are opened on the node and its RSS growth per connection is reported.
Last line: JSON.

    .venv/bin/python bench/routing.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import secrets
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
from sqlalchemy import insert  # noqa: E402

from core import keys, records  # noqa: E402
from core.credentials import hash_password, hash_token  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from signaling.auth import COOKIE, Session  # noqa: E402
from testkit.demo import seed_demo  # noqa: E402
from testkit.demo_catalogue import DEMO_ITEMS  # noqa: E402
from testkit.localstack import free_port, private_servers, wait_http  # noqa: E402

ITEMS = [it.code for it in DEMO_ITEMS]
GOAL_P99_MS = 20.0


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def quiet_collector() -> None:
    """Keep this bench process's own full garbage collections out of what it measures: a
    full collection over its websockets holds its loop for tens of milliseconds."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1_000_000)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


# --- terminals process ----------------------------------------------------------------


async def hold_terminals(url: str, sids: list[str], join: bool) -> None:
    """Connect every terminal (joining the queue if asked), say "ready", hold until stdin ends."""
    raise_fd_limit()
    conns: list[tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]] = []
    gate = asyncio.Semaphore(20)  # the node's Redis pool (100) must not run dry
    joined = 0

    async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:
            pass

    async def one(i: int, sid: str) -> None:
        nonlocal joined
        async with gate:
            client = aiohttp.ClientSession(headers={"Cookie": f"{COOKIE}={sid}"})
            ws = await client.ws_connect(f"{url}/ws", heartbeat=None, max_msg_size=0)
            conns.append((client, ws))
            await ws.receive()  # hello
            if join:
                await ws.send_str(json.dumps({"type": "join_queue",
                                              "item_code": ITEMS[i % len(ITEMS)]}))
                while json.loads((await ws.receive()).data)["type"] != "queue_status":
                    pass
                joined += 1
            # Read from now on: an unread socket answers no ping and the server drops it.
            readers.append(asyncio.create_task(drain(ws)))

    readers: list[asyncio.Task[None]] = []
    await asyncio.gather(*(one(i, s) for i, s in enumerate(sids)))
    quiet_collector()
    print(f"ready {len(conns)} {joined}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for t in readers:
        t.cancel()
    for client, ws in conns:
        await ws.close()
        await client.close()


# --- setup ----------------------------------------------------------------------------


async def add_people(database_url: str, terminals: int, clerks: int,
                     rng: random.Random) -> dict[str, list[str]]:
    """Bulk-insert bench terminals and clerks; returns each clerk's items."""
    skills = {f"bench-clerk-{i:03d}": sorted(rng.sample(ITEMS, 5)) for i in range(clerks)}
    engine = records.make_engine(database_url)
    pw = hash_password("bench-pass")
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(records.terminals), [
                {"terminal_id": f"bench-t-{i:05d}", "name": f"测试终端{i}",
                 "village": "江夏区测试村", "region_code": "420115",
                 "token_hash": hash_token(f"bench-token-{i:05d}")}
                for i in range(terminals)])
            await conn.execute(insert(records.accounts), [
                {"username": u, "display_name": f"测试坐席{u[-3:]}", "role": "clerk",
                 "password_hash": pw, "region_code": "420115", "skills": s,
                 "jurisdictions": ["42"], "review_groups": []}
                for u, s in skills.items()])
    finally:
        await engine.dispose()
    return skills


async def sessions(redis_url: str, people: list[Session]) -> list[str]:
    """Login sessions for the bench's people (logging in 7,000 times would measure argon2)."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    ttl = Settings.from_env({}).session_ttl_s
    try:
        sids = [secrets.token_urlsafe(32) for _ in people]
        async with r.pipeline(transaction=False) as pipe:
            for sid, p in zip(sids, people, strict=True):
                pipe.set(keys.session(sid), p.model_dump_json(), ex=ttl)  # as open_session
            await pipe.execute()
        return sids
    finally:
        await r.aclose()


def terminal_session(i: int) -> Session:
    return Session(kind="terminal", who=f"bench-t-{i:05d}", role="terminal",
                   display_name=f"测试终端{i}", region_code="420115", village="江夏区测试村")


def start_terminals(url: str, sids: list[str], join: bool, folder: Path) -> subprocess.Popen[str]:
    path = folder / f"sids-{len(sids)}-{join}.json"
    path.write_text(json.dumps(sids))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--hold", str(path), "--url", url] + (["--join"] if join
                                                                         else []),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"terminal holder failed: {line!r}")
    print(f"terminals connected/joined: {line.split()[1:]}", flush=True)
    return proc


def stop_terminals(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- clerks ---------------------------------------------------------------------------


async def connect_clerk(url: str, sid: str, gate: asyncio.Semaphore
                        ) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    async with gate:
        client = aiohttp.ClientSession(headers={"Cookie": f"{COOKIE}={sid}"})
        ws = await client.ws_connect(f"{url}/ws", heartbeat=None)
        while json.loads((await ws.receive()).data)["type"] != "clerk_state":
            pass
        return client, ws


async def clerk(client: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                rng: random.Random, waits: list[float], done: asyncio.Event,
                stats: dict[str, int], hold: tuple[float, float], pause: float) -> None:
    async with client:
        async def next_of(*kinds: str, wait: float) -> dict[str, Any] | None:
            try:
                async with asyncio.timeout(wait):
                    while True:
                        msg: dict[str, Any] = json.loads((await ws.receive()).data)
                        if msg["type"] == "error":
                            stats["errors"] += 1
                            code = f"error_{msg['code']}"
                            stats[code] = stats.get(code, 0) + 1
                        if msg["type"] in kinds:
                            return msg
            except TimeoutError:
                return None

        # Clerks come on duty at random too (--saturate: all at once, a thundering herd).
        await next_of("-", wait=rng.uniform(0.0, pause))
        while not done.is_set():
            sent = time.perf_counter()
            await ws.send_str('{"type":"set_status","status":"ready"}')
            offer = await next_of("offer", wait=3)
            if offer is None:
                stats["no_applicant"] += 1
                break  # nobody left this clerk may take
            waits.append((time.perf_counter() - sent) * 1000)
            await ws.send_str(json.dumps({"type": "accept_offer",
                                          "offer_id": offer["offer_id"]}))
            call = await next_of("call_assigned", "error", wait=10)
            if call is None or call["type"] != "call_assigned":
                stats["accept_failed"] += 1
                continue
            stats["calls"] += 1
            await next_of("-", wait=rng.uniform(*hold))  # the call; reading answers pings
            await ws.send_str(json.dumps({"type": "end_call", "call_id": call["call_id"]}))
            await ws.send_str('{"type":"set_status","status":"not_ready","reason":"整理"}')
            await ws.send_str('{"type":"wrapup_done"}')
            await next_of("clerk_state", wait=10)
            await next_of("-", wait=rng.uniform(0.0, pause))  # frees up at random
        await ws.close()


async def run(args: argparse.Namespace, folder: Path, redis_url: str, pg_url: str
              ) -> dict[str, Any]:
    rng = random.Random(args.seed)
    await seed_demo(pg_url)
    skills = await add_people(pg_url, args.applicants + args.idle, args.clerks, rng)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url,
           "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port), "OFFER_TIMEOUT_S": "30",
           "WRAPUP_S": "30", "TERMINAL_GRACE_S": "60", "RUN_MODE": "local"}
    log = (folder / "signaling.log").open("wb")
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    node = subprocess.Popen([sys.executable, *profile, "-m", "signaling"],  # noqa: ASYNC220
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=raise_fd_limit)
    try:
        await asyncio.to_thread(wait_http, f"{url}/healthz", 30, node, "signaling node")
        proc = psutil.Process(node.pid)
        await asyncio.sleep(1)  # a fresh node: nothing freed yet to be reused
        rss_before = proc.memory_info().rss
        idle_sids = await sessions(redis_url, [
            terminal_session(args.applicants + i) for i in range(args.idle)])
        holder = start_terminals(url, idle_sids, False, folder)
        await asyncio.sleep(2)
        rss_after = proc.memory_info().rss
        per_conn = (rss_after - rss_before) / args.idle
        stop_terminals(holder)
        await asyncio.sleep(3)  # let the node finish 5,000 disconnects before the next phase
        print(f"memory: RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB "
              f"with {args.idle} idle websockets: {per_conn / 1024:.1f} KiB each", flush=True)
        clerk_sids = await sessions(redis_url, [
            Session(kind="staff", who=u, role="clerk", display_name=u,
                    region_code="420115", skills=s, jurisdictions=["42"])
            for u, s in skills.items()])
        app_sids = await sessions(redis_url, [terminal_session(i)
                                                  for i in range(args.applicants)])
        t0 = time.perf_counter()
        holder = start_terminals(url, app_sids, True, folder)
        print(f"{args.applicants} applicants waiting after {time.perf_counter() - t0:.1f} s",
              flush=True)
        waits: list[float] = []
        stats = {"calls": 0, "no_applicant": 0, "accept_failed": 0, "errors": 0}
        done = asyncio.Event()
        gate = asyncio.Semaphore(20)  # the node's Redis pool (100) must not run dry
        conns = await asyncio.gather(*(connect_clerk(url, sid, gate) for sid in clerk_sids))
        quiet_collector()
        t0 = time.perf_counter()
        cpu0 = proc.cpu_times()
        hold, pause = ((0.05, 0.6), 0.4) if args.saturate else ((3.0, 9.0), 3.0)
        tasks = [asyncio.create_task(clerk(c, ws, random.Random(rng.random()), waits, done,
                                           stats, hold, pause))
                 for c, ws in conns]
        try:
            async with asyncio.timeout(args.max_seconds):
                await asyncio.gather(*tasks)
        except TimeoutError:
            done.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - t0
        cpu1 = proc.cpu_times()
        node_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed
        stop_terminals(holder)
        p50, p99, top = pct(waits, 50), pct(waits, 99), max(waits, default=float("nan"))
        # Near the end a clerk's items run dry and it waits for work, not for routing:
        # the headline figure is over the offers made while 10 % of applicants still waited.
        busy = waits[: int(len(waits) * 0.9)]
        busy_p50, busy_p99 = pct(busy, 50), pct(busy, 99)
        print(f"while applicants wait (first 90 % of offers): p50 {busy_p50:.2f} ms, "
              f"p99 {busy_p99:.2f} ms", flush=True)
        print(f"routing: {len(waits)} offers, {stats['calls']} calls in {elapsed:.1f} s; "
              f"ready->offer p50 {p50:.2f} ms, p90 {pct(waits, 90):.2f} ms, "
              f"p99 {p99:.2f} ms, max {top:.2f} ms; {len(waits) / elapsed:.1f} ready/s; "
              f"node CPU {node_cpu:.2f} cores; "
              f"{stats}", flush=True)

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
    return {
        "bench": "routing", "applicants": args.applicants, "items": len(ITEMS),
        "clerks": args.clerks, "offers": len(waits), "calls": stats["calls"],
        "ready_to_offer_p50_ms": round(p50, 2), "ready_to_offer_p99_ms": round(p99, 2),
        "ready_to_offer_max_ms": round(top, 2),
        "busy_p50_ms": round(busy_p50, 2), "busy_p99_ms": round(busy_p99, 2),
        "node_cpu_cores": round(node_cpu, 2), "mode": "saturate" if args.saturate else "random",
        "ready_per_s": round(len(waits) / elapsed, 1),
        "goal_p99_ms": GOAL_P99_MS, "goal_met": busy_p99 < GOAL_P99_MS,
        "idle_connections": args.idle, "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
        "kib_per_idle_connection": round(per_conn / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--applicants", type=int, default=2000)
    ap.add_argument("--clerks", type=int, default=200)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=150)
    ap.add_argument("--saturate", action="store_true",
                    help="clerks cycle as fast as they can (calls 0.05-0.6 s): measures "
                         "throughput, and latency under overload; default calls last 3-9 s")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", help="write a cProfile of the signaling node to this file")
    ap.add_argument("--hold", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--join", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hold:
        asyncio.run(hold_terminals(args.url, json.loads(Path(args.hold).read_text()), args.join))
        return
    raise_fd_limit()
    folder = Path(tempfile.mkdtemp(prefix="bench-routing-"))
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

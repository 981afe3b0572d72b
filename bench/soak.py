"""Soak: 2,000 terminals and 200 clerks over two signaling nodes, calls on two media workers,
for 30 minutes; are memory, files, Redis, PostgreSQL and routing latency flat? Not in CI.

Private Redis + PostgreSQL; two `python -m signaling` nodes and two `python -m media`
workers. Terminals (half on each node, in two holder processes) join the queue, take their
call, and join again a few seconds after it ends; clerks (half on each node) go ready,
accept, hold the call 3-9 s, hang up and wrap up. Each worker carries `--media-calls`
real recorded calls at a time (bench/calls.py's peers: two 640x480 VP8 videos + audio and
the clerk's), each a minute long, one after the other. Every minute: RSS and open files of
every process, Redis keys and memory, PostgreSQL connections, ready → offer p50/p99 of
that minute. The kiosks' and the media peers' processes run at nice 19 (on a deployment they
are other machines). `--pin` keeps signaling, Redis, PostgreSQL and the clerks on CPU 0 and
the media workers, their peers and the kiosks on the other cores (as separate hosts would).
Prints a table per 5 minutes; last line: JSON. `--keep-logs DIR` keeps every process's log.

    .venv/bin/python bench/soak.py [--minutes 30] [--media-calls 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
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
import redis.asyncio as aioredis  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench import calls as media_bench  # noqa: E402
from bench import routing  # noqa: E402
from core import records  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from signaling.auth import COOKIE, Session  # noqa: E402
from testkit.demo import seed_demo  # noqa: E402
from testkit.localstack import free_port, private_servers, wait_http  # noqa: E402

ITEMS = routing.ITEMS
GOAL_P99_MS = 20.0


# --- terminal holder process: join, be served, join again ------------------------------


async def terminals_loop(url: str, sids: list[str], seed: int) -> None:
    routing.raise_fd_limit()
    rng = random.Random(seed)
    gate = asyncio.Semaphore(20)
    stop = asyncio.Event()
    stats: dict[str, int] = {"calls": 0, "errors": 0, "reconnects": 0}

    async def one(i: int, sid: str) -> None:
        # Like the kiosk page: whatever ends a socket, count it and connect again.
        while not stop.is_set():
            try:
                await session(i, sid)
            except (aiohttp.ClientError, ConnectionError, TimeoutError, TypeError,
                    ValueError, KeyError) as exc:
                code = f"lost_{type(exc).__name__}"
                stats[code] = stats.get(code, 0) + 1
                await asyncio.sleep(1)
            if not stop.is_set():
                stats["reconnects"] += 1

    async def session(i: int, sid: str) -> None:
        item = ITEMS[i % len(ITEMS)]
        async with gate:
            client = aiohttp.ClientSession(headers={"Cookie": f"{COOKIE}={sid}"})
            try:
                async with asyncio.timeout(30):
                    ws = await client.ws_connect(f"{url}/ws", heartbeat=None, max_msg_size=0)
            except (aiohttp.ClientError, TimeoutError) as exc:
                code = f"connect_{getattr(exc, 'status', type(exc).__name__)}"
                stats[code] = stats.get(code, 0) + 1
                await client.close()
                return
        try:
            await ws.send_str(json.dumps({"type": "join_queue", "item_code": item}))
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    stats[f"frame_{frame.type.name}"] = stats.get(f"frame_{frame.type.name}", 0) + 1
                    return
                msg = json.loads(frame.data)
                if msg["type"] == "error" and msg.get("code") not in ("rate_limited",):
                    stats["errors"] += 1
                    code = f"error_{msg.get('code')}"
                    stats[code] = stats.get(code, 0) + 1
                elif msg["type"] == "call_assigned":
                    stats["calls"] += 1
                elif msg["type"] in ("call_ended", "left_queue"):
                    await asyncio.sleep(rng.uniform(1.0, 5.0))  # then back in line
                    await ws.send_str(json.dumps({"type": "join_queue", "item_code": item}))
            stats[f"closed_{ws.close_code}"] = stats.get(f"closed_{ws.close_code}", 0) + 1
        finally:
            await ws.close()
            await client.close()

    async def report() -> None:  # the soak keeps stderr in its logs
        while True:
            await asyncio.sleep(60)
            print(f"holder {seed}: {json.dumps(stats)}", file=sys.stderr, flush=True)

    tasks = [asyncio.create_task(one(i, s)) for i, s in enumerate(sids)]
    tasks.append(asyncio.create_task(report()))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(stats), flush=True)


# With two or more cores and --pin: signaling, Redis, PostgreSQL and the clerks on CPU 0;
# the media workers, their calls' peers and the kiosks on the others (on a deployment the
# media workers are hosts of their own and the kiosks the villages' machines).
MEDIA_CPUS: set[int] = set()


def on_media_cpus() -> None:
    if MEDIA_CPUS:
        os.sched_setaffinity(0, MEDIA_CPUS)


def load_generator() -> None:
    """In a child that plays kiosks: it takes only the CPU the service leaves. On a
    deployment these are the villages' own machines; here they share two cores with the
    service, and at equal priority they starved it (load 12, every intent slow)."""
    os.nice(19)
    on_media_cpus()
    routing.raise_fd_limit()


def start_holder(url: str, sids: list[str], folder: Path, seed: int) -> subprocess.Popen[str]:
    path = folder / f"sids-{seed}.json"
    path.write_text(json.dumps(sids))
    proc = subprocess.Popen([sys.executable, __file__, "--hold", str(path), "--url", url,
                             "--seed", str(seed)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            stderr=(folder / f"holder{seed}.log").open("w"),
                            preexec_fn=load_generator)
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith("ready"):
        raise RuntimeError("a terminal holder did not start")
    return proc


# --- clerks -----------------------------------------------------------------------------


class SocketClosed(ConnectionError):
    """The clerk's websocket closed under it."""


async def clerk_loop(url: str, sid: str, rng: random.Random, waits: list[tuple[float, float]],
                     stop: asyncio.Event, stats: dict[str, int]) -> None:
    """A clerk all along: a socket that closes is counted and opened again (a clerk's page
    reconnects), so a drop shows in the figures instead of silently ending the clerk."""
    while not stop.is_set():
        try:
            await clerk_session(url, sid, rng, waits, stop, stats)
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            stats["clerk_drops"] += 1
            print(f"clerk socket lost: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            await asyncio.sleep(1)


async def clerk_session(url: str, sid: str, rng: random.Random,
                        waits: list[tuple[float, float]], stop: asyncio.Event,
                        stats: dict[str, int]) -> None:
    async with asyncio.timeout(30):
        client, ws = await routing.connect_clerk(url, sid, asyncio.Semaphore(1))
    async with client:
        async def next_of(*kinds: str, wait: float) -> dict[str, Any] | None:
            try:
                async with asyncio.timeout(wait):
                    while True:
                        frame = await ws.receive()
                        if frame.type != aiohttp.WSMsgType.TEXT:
                            raise SocketClosed(f"{frame.type.name} {ws.close_code}")
                        msg: dict[str, Any] = json.loads(frame.data)
                        if msg["type"] == "error":
                            stats["errors"] += 1
                            code = f"error_{msg.get('code')}"
                            stats[code] = stats.get(code, 0) + 1
                        if msg["type"] in kinds:
                            return msg
            except TimeoutError:
                return None

        await next_of("-", wait=rng.uniform(0.0, 5.0))
        while not stop.is_set():
            sent = time.perf_counter()
            await ws.send_str('{"type":"set_status","status":"ready"}')
            offer = await next_of("offer", wait=10)
            if offer is None:
                stats["no_applicant"] += 1
                continue
            waits.append((time.monotonic(), (time.perf_counter() - sent) * 1000))
            await ws.send_str(json.dumps({"type": "accept_offer",
                                          "offer_id": offer["offer_id"]}))
            call = await next_of("call_assigned", "error", wait=10)
            if call is None or call["type"] != "call_assigned":
                stats["accept_failed"] += 1
                continue
            stats["calls"] += 1
            await next_of("-", wait=rng.uniform(3.0, 9.0))
            await ws.send_str(json.dumps({"type": "end_call", "call_id": call["call_id"]}))
            await ws.send_str('{"type":"set_status","status":"not_ready","reason":"整理"}')
            await ws.send_str('{"type":"wrapup_done"}')
            await next_of("clerk_state", wait=10)
            await next_of("-", wait=rng.uniform(0.5, 3.0))
        await ws.close()


# --- media: real calls, one after the other, on each worker ---------------------------


async def media_loop(worker_url: str, clips: Path, per_worker: int, stop: asyncio.Event,
                     stats: dict[str, int]) -> None:
    async def one(slot: int) -> None:
        n = 0
        while not stop.is_set():
            call_id = f"soak-{slot}-{n}-{int(time.time())}"
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "bench" / "calls.py"), "--peer", worker_url,
                call_id, "60", "2", str(clips), stdout=subprocess.PIPE, cwd=str(ROOT),
                preexec_fn=load_generator)
            await proc.communicate()
            await media_bench._stop(worker_url, call_id)
            stats["media_calls"] += 1
            if proc.returncode != 0:
                stats["media_errors"] += 1
            n += 1

    await asyncio.gather(*(one(i) for i in range(per_worker)))


# --- sampling ---------------------------------------------------------------------------


async def sample(procs: dict[str, psutil.Process], redis_url: str, pg_url: str
                 ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in procs.items():
        try:
            out[f"{name}_rss_mib"] = round(p.memory_info().rss / 2**20, 1)
            out[f"{name}_fds"] = p.num_fds()
        except psutil.Error:
            out[f"{name}_rss_mib"] = None
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        out["redis_keys"] = await r.dbsize()
        out["redis_mib"] = round(int((await r.info("memory"))["used_memory"]) / 2**20, 1)
    finally:
        await r.aclose()
    engine = records.make_engine(pg_url)
    try:
        async with engine.connect() as conn:
            out["pg_connections"] = int((await conn.execute(text(
                "select count(*) from pg_stat_activity where datname = current_database()"
            ))).scalar_one())
    finally:
        await engine.dispose()
    return out


Threads = dict[str, tuple[int, int]]  # "pid/tid" -> (ns on a CPU, ns waiting for one)


def cpu_ns(pid: int, with_children: bool) -> Threads:
    """Each thread's (and its children's, if asked) time run on a CPU and time spent
    runnable but waiting for one (the scheduler's /proc/PID/task/*/schedstat)."""
    pids = [pid]
    if with_children:
        with contextlib.suppress(psutil.Error):  # gone: counted as what it had
            pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
    out: Threads = {}
    for one in pids:
        for stat in Path(f"/proc/{one}/task").glob("*/schedstat"):
            try:
                fields = stat.read_text().split()
                out[f"{one}/{stat.parent.name}"] = (int(fields[0]), int(fields[1]))
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended while read
    return out


class CpuShare:
    """Per process, the milliseconds of each wall second it ran on a CPU and waited for one
    since the last reading: where routing latency goes when two cores carry everything. A
    service process counts its children (PostgreSQL's backends, the workers' pools); this
    process counts only itself (its children are the kiosks and peers). Per thread, so a
    thread or child that ended does not take its past time away from the total."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.last = {name: self._ns(name) for name in pids}
        self.at = time.monotonic()

    def _ns(self, name: str) -> Threads:
        return cpu_ns(self.pids[name], with_children=name != "bench")

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        per_s = 1e6 * max(now - self.at, 1e-3)
        out: dict[str, float] = {}
        for name in self.pids:
            threads, before = self._ns(name), self.last[name]
            ran = sum(r - before.get(t, (0, 0))[0] for t, (r, _) in threads.items())
            waited = sum(w - before.get(t, (0, 0))[1] for t, (_, w) in threads.items())
            out[f"{name}_cpu_ms_s"] = round(ran / per_s, 1)
            out[f"{name}_cpu_wait_ms_s"] = round(waited / per_s, 1)
            self.last[name] = threads
        self.at = now
        return out


async def run(args: argparse.Namespace, folder: Path, redis_url: str, pg_url: str,
              servers: dict[str, int]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    await seed_demo(pg_url)
    skills = await routing.add_people(pg_url, args.terminals, args.clerks, rng)
    node_ports, worker_ports = [free_port(), free_port()], [free_port(), free_port()]
    base = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": pg_url,
            "JOIN_TOKEN_SECRET": media_bench.SECRET, "OFFER_TIMEOUT_S": "30",
            "WRAPUP_S": "30", "TERMINAL_GRACE_S": "60", "MEDIA_ICE_HOSTS": "127.0.0.1",
            "STORAGE_ROOT": str(folder / "storage"), "MEDIA_SEGMENT_S": "60",
            "RUN_MODE": "local"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for i, port in enumerate(node_ports, 1):
        env = {**base, "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port),
               "NODE_ID": f"soak-node-{i}"}
        procs[f"signaling{i}"] = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "signaling"], cwd=ROOT, env=env,
            stdout=(folder / f"signaling{i}.log").open("wb"), stderr=subprocess.STDOUT,
            preexec_fn=routing.raise_fd_limit)
    for i, port in enumerate(worker_ports, 1):
        env = {**base, "MEDIA_LISTEN_HOST": "127.0.0.1", "MEDIA_LISTEN_PORT": str(port),
               "MEDIA_WORKER_ID": f"soak-media-{i}", "NODE_ID": f"soak-media-{i}"}
        procs[f"media{i}"] = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "media"], cwd=ROOT, env=env,
            stdout=(folder / f"media{i}.log").open("wb"), stderr=subprocess.STDOUT,
            preexec_fn=on_media_cpus)
    holders: list[subprocess.Popen[str]] = []
    stop = asyncio.Event()
    try:
        for i, port in enumerate(node_ports, 1):
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", 60,
                                    procs[f"signaling{i}"], "signaling")
        for i, port in enumerate(worker_ports, 1):
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/health", 120,
                                    procs[f"media{i}"], "media")
        urls = [f"http://127.0.0.1:{p}" for p in node_ports]
        term_sids = await routing.sessions(redis_url, [
            routing.terminal_session(i) for i in range(args.terminals)])
        half = len(term_sids) // 2
        for n, part in enumerate((term_sids[:half], term_sids[half:])):
            holders.append(await asyncio.to_thread(start_holder, urls[n], part, folder, n))
        clerk_sids = await routing.sessions(redis_url, [
            Session(kind="staff", who=u, role="clerk", display_name=u, region_code="420115",
                    skills=s, jurisdictions=["42"]) for u, s in skills.items()])
        waits: list[tuple[float, float]] = []
        stats = {"calls": 0, "no_applicant": 0, "accept_failed": 0, "errors": 0,
                 "media_calls": 0, "media_errors": 0, "clerk_drops": 0}
        clips = folder / "clips.json"
        media_bench._write_clips(clips)
        clerks = [asyncio.create_task(clerk_loop(urls[i % 2], sid, random.Random(rng.random()),
                                                 waits, stop, stats))
                  for i, sid in enumerate(clerk_sids)]
        media = [asyncio.create_task(media_loop(f"http://127.0.0.1:{p}", clips,
                                                args.media_calls, stop, stats))
                 for p in worker_ports]
        watched = {name: psutil.Process(p.pid) for name, p in procs.items()}
        watched.update({f"holder{i}": psutil.Process(h.pid) for i, h in enumerate(holders)})
        cpu = CpuShare({**{n: p.pid for n, p in watched.items()}, **servers,
                          "bench": os.getpid()})
        minutes: list[dict[str, Any]] = []
        t0 = time.monotonic()
        for minute in range(1, args.minutes + 1):
            await asyncio.sleep(max(0.0, t0 + minute * 60 - time.monotonic()))
            sampling = time.monotonic()
            got = cpu.read()
            got.update(await sample(watched, redis_url, pg_url))
            persistent = await persistent_keys(redis_url)
            got["sample_s"] = round(time.monotonic() - sampling, 2)  # the figures' own cost
            recent = [ms for at, ms in waits if at >= t0 + (minute - 1) * 60]
            got.update({"minute": minute, "offers": len(recent),
                        "p50_ms": round(routing.pct(recent, 50), 2),
                        "p99_ms": round(routing.pct(recent, 99), 2),
                        "errors": stats["errors"], "media_calls": stats["media_calls"],
                        "clerk_drops": stats["clerk_drops"],
                        "no_applicant": stats["no_applicant"],
                        "accept_failed": stats["accept_failed"],
                        "persistent_keys": persistent})
            minutes.append(got)
            print(json.dumps(got), flush=True)
        stop.set()
        await asyncio.gather(*clerks, *media, return_exceptions=True)
    finally:
        for h in holders:
            routing.stop_terminals(h)
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    table(minutes)
    p99s = [m["p99_ms"] for m in minutes if m["offers"]]
    first, last = minutes[0], minutes[-1]
    return {"bench": "soak", "minutes": args.minutes, "terminals": args.terminals,
            "clerks": args.clerks, "media_calls_per_worker": args.media_calls,
            "calls": stats["calls"], "media_calls": stats["media_calls"],
            "media_errors": stats["media_errors"], "errors": stats["errors"],
            "stats": stats,
            "p99_ms_max_minute": max(p99s, default=None),
            "goal_p99_ms": GOAL_P99_MS,
            "media_cpus": sorted(MEDIA_CPUS) or "any",
            "goal_met": bool(p99s) and max(p99s) < GOAL_P99_MS and stats["errors"] == 0,
            "rss_mib_first": {k: v for k, v in first.items() if k.endswith("_rss_mib")},
            "rss_mib_last": {k: v for k, v in last.items() if k.endswith("_rss_mib")},
            "redis_keys": [first["redis_keys"], last["redis_keys"]],
            "pg_connections": [first["pg_connections"], last["pg_connections"]]}


async def persistent_keys(redis_url: str) -> int:
    """Keys with no expiry: these must stay flat (the rest go by their TTL). From INFO
    keyspace (keys minus expires): scanning 100,000 keys each minute took the measuring
    process 5-8 s of CPU beside the service by the end of a run."""
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        space = await r.info("keyspace")
        return sum(int(db["keys"]) - int(db["expires"]) for db in space.values())
    finally:
        await r.aclose()


def postmaster_pid(folder: Path) -> int:
    return int((folder / "data" / "postmaster.pid").read_text().split()[0])


def table(minutes: list[dict[str, Any]]) -> None:
    """One row per 5 minutes (and the last)."""
    cols = ["minute", "offers", "p50_ms", "p99_ms", "signaling1_rss_mib", "signaling2_rss_mib",
            "media1_rss_mib", "media2_rss_mib", "signaling1_fds", "media1_fds", "redis_keys",
            "redis_mib", "persistent_keys", "pg_connections", "errors", "clerk_drops",
            "media_calls"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for m in minutes:
        if m["minute"] % 5 == 0 or m is minutes[-1]:
            print("| " + " | ".join(str(m.get(c, "")) for c in cols) + " |")
    names = [c.removesuffix("_cpu_ms_s") for c in minutes[0] if c.endswith("_cpu_ms_s")
             ] if minutes else []
    print("\nms of each second on a CPU / waiting for one:")
    print("| minute | p99_ms | " + " | ".join(names) + " |")
    print("|" + "---|" * (len(names) + 2))
    for m in minutes:
        if m["minute"] % 5 == 0 or m is minutes[-1]:
            print(f"| {m['minute']} | {m['p99_ms']} | " + " | ".join(
                f"{m.get(n + '_cpu_ms_s')} / {m.get(n + '_cpu_wait_ms_s')}" for n in names) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--clerks", type=int, default=200)
    ap.add_argument("--media-calls", type=int, default=1, help="real calls per worker")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep-logs", type=Path, help="copy the processes' logs here at the end")
    ap.add_argument("--pin", action="store_true",
                    help="signaling, Redis, PostgreSQL and the clerks on CPU 0, media and "
                         "kiosks on the others")
    ap.add_argument("--hold", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hold:
        asyncio.run(terminals_loop(args.url, json.loads(Path(args.hold).read_text()),
                                   args.seed))
        return
    routing.raise_fd_limit()
    cores = psutil.cpu_count() or 1
    if args.pin and cores >= 2:
        MEDIA_CPUS.update(range(1, cores))
        os.sched_setaffinity(0, {0})  # Redis, PostgreSQL and signaling inherit it
    # A `kill` of the soak unwinds like Ctrl-C, so its private servers and children stop too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    os.chmod(folder, 0o755)
    try:
        with private_servers(folder) as (redis_srv, pg):
            upgrade(pg.url)
            servers = {"redis": redis_srv.process.pid if redis_srv.process else 0,
                       "postgres": postmaster_pid(pg.folder)}
            result = asyncio.run(run(args, folder, redis_srv.url, pg.url, servers))
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log_file in folder.rglob("*.log"):  # Redis's and PostgreSQL's too
                shutil.copy(log_file, args.keep_logs / log_file.name)
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Approval throughput: cases per minute through a two-level workflow with 4 reviewer consumers.

Starts a private redis-server and PostgreSQL (free ports, temporary folder), migrates and
seeds them, runs 4 automated reviewer consumers as separate `python -m approval` processes,
submits cases of 最低生活保障申请 (town civil affairs → district civil affairs) with the same
store code the REST API calls, and waits until every case is certified (e-sealed).

Figures: cases/minute end to end, p50/p99 submit → first reviewer's task (the moment a
consumer read it), submit latency, and where the time goes (phase seconds in the consumers,
CPU seconds per process). The last line is one JSON object.

    .venv/bin/python bench/approval.py [--cases 600] [--submitters 4] [--consumers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from approval import effects  # noqa: E402
from approval.store import CaseSubmission, make_store  # noqa: E402
from approval.tables import cases  # noqa: E402
from approval.worker import utcnow  # noqa: E402
from core import records  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from testkit.demo import seed_demo  # noqa: E402
from testkit.localstack import private_servers  # noqa: E402
from verify.idnumber import with_check_digit  # noqa: E402

GROUPS = "town-civil-affairs,district-civil-affairs"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def submission(i: int) -> CaseSubmission:
    return CaseSubmission.model_validate({
        "terminal_id": "T-420115-001", "item_code": "DB-SQ", "applicant_name": f"申请人{i}",
        "id_number": with_check_digit("42011519800101123"), "phone": "13800138000",
        "scans": [f"scan-{i}"], "verification": {"verdict": "pass", "score": 0.9},
        "materials_provided": ["身份证", "户口簿"], "outcome": "放心回家"})


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, plist in pids.items():
        total = 0.0
        for pid in plist:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[name] = total
    return out


def postgres_pids(data: Path) -> list[int]:
    master = int((data / "postmaster.pid").read_text().split()[0])
    p = psutil.Process(master)
    return [master] + [c.pid for c in p.children(recursive=True)]


async def submit_all(settings: Settings, n: int, submitters: int, start: int = 0,
                     per_minute: float = 0.0) -> list[float]:
    """Submit `n` cases: as fast as possible, or paced at `per_minute` when it is > 0."""
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    engine = records.make_engine(settings.database_url)
    store = make_store(engine, settings)
    latencies: list[float] = []
    counter = iter(range(start, start + n))
    begin = time.perf_counter()

    async def one_submitter() -> None:
        for i in counter:
            if per_minute > 0:
                await asyncio.sleep(max(0.0, begin + (i - start) * 60 / per_minute
                                        - time.perf_counter()))
            t0 = time.perf_counter()
            change = await store.create(submission(i), "clerk1", utcnow())
            await effects.carry_out(redis, change, settings.base_url)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one_submitter() for _ in range(submitters)))
    await redis.aclose()
    await engine.dispose()
    return latencies


async def certified(settings: Settings) -> int:
    engine = records.make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(cases).where(
                cases.c.status == "certified"))).scalar_one())
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=600)
    ap.add_argument("--submitters", type=int, default=4)
    ap.add_argument("--consumers", type=int, default=4)
    ap.add_argument("--paced-cases", type=int, default=300)
    ap.add_argument("--paced-rate", type=float, default=1000.0, help="cases per minute")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-approval-"))
    os.chmod(folder, 0o755)
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path) -> None:
    with private_servers(folder) as (redis_server, pg):
        upgrade(pg.url)
        asyncio.run(seed_demo(pg.url))
        env = {**os.environ, "REDIS_URL": redis_server.url, "DATABASE_URL": pg.url,
               "ESEAL_KEY_DIR": str(folder / "eseal"), "PYTHONPATH": str(ROOT),
               "RUN_MODE": "local", "PII_KEY_FILE": str(folder / "pii.key")}
        settings = Settings.from_env(env)
        consumers = [subprocess.Popen(
            [sys.executable, "-m", "approval", "--auto", GROUPS, "--name", f"auto{i}",
             "--no-sweep"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            for i in range(args.consumers)]
        time.sleep(2.0)  # consumers import and connect before the clock starts
        pids = {"consumers": [c.pid for c in consumers],
                "postgres": postgres_pids(folder / "postgres" / "data"),
                "redis": [redis_server.process.pid] if redis_server.process else [],
                "bench (submitters)": [os.getpid()]}
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        submit_lat = asyncio.run(submit_all(settings, args.cases, args.submitters))
        t_submitted = time.perf_counter() - t0
        done = 0
        while done < args.cases and time.perf_counter() - t0 < 600:
            done = asyncio.run(certified(settings))
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        pids["postgres"] = postgres_pids(folder / "postgres" / "data")
        cpu = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in cpu_seconds(pids).items()}
        # Latency at the goal rate: a saturated run only measures its own backlog.
        paced_from = time.time()
        paced_lat = asyncio.run(submit_all(settings, args.paced_cases, args.submitters,
                                           args.cases, args.paced_rate))
        while asyncio.run(certified(settings)) < args.cases + args.paced_cases \
                and time.perf_counter() - t0 < 900:
            time.sleep(0.2)
        reports: list[dict[str, Any]] = []
        for c in consumers:
            c.send_signal(signal.SIGTERM)
        for c in consumers:
            out, _ = c.communicate(timeout=30)
            reports += json.loads(out.strip().splitlines()[-1])["consumers"]
    saturated_pickup = [p for r in reports for p, at in zip(r["pickup_s"], r["picked_at"],
                                                              strict=True) if at < paced_from]
    pickup = [p for r in reports for p, at in zip(r["pickup_s"], r["picked_at"], strict=True)
              if at >= paced_from]
    phases: dict[str, float] = {}
    for r in reports:
        for k, v in r["timings"].items():
            phases[k] = phases.get(k, 0.0) + v
    tasks = sum(sum(r["counts"].values()) for r in reports)
    per_minute = done / elapsed * 60
    print(f"cases certified: {done}/{args.cases} in {elapsed:.1f} s "
          f"(submitting took {t_submitted:.1f} s) -> {per_minute:.0f} cases/min")
    print(f"submit -> first reviewer task at {args.paced_rate:.0f} cases/min "
          f"({len(pickup)} cases): p50 {pct(pickup, 50) * 1000:.1f} ms, "
          f"p99 {pct(pickup, 99) * 1000:.1f} ms")
    print(f"  (saturated run, backlog included: p50 {pct(saturated_pickup, 50) * 1000:.0f} ms, "
          f"p99 {pct(saturated_pickup, 99) * 1000:.0f} ms)")
    print(f"submit call (PostgreSQL case + audit, then XADD): saturated p50 "
          f"{pct(submit_lat, 50) * 1000:.1f} ms, p99 {pct(submit_lat, 99) * 1000:.1f} ms; "
          f"paced p50 {pct(paced_lat, 50) * 1000:.1f} ms, p99 {pct(paced_lat, 99) * 1000:.1f} ms")
    print(f"consumer phases over {tasks} tasks, both runs (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    print("CPU seconds during the run: " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    print(json.dumps({
        "bench": "approval", "cases": done, "seconds": round(elapsed, 2),
        "cases_per_minute": round(per_minute),
        "submit_to_first_task_p50_ms": round(pct(pickup, 50) * 1000, 1),
        "submit_to_first_task_p99_ms": round(pct(pickup, 99) * 1000, 1),
        "paced_rate_per_minute": args.paced_rate,
        "saturated_submit_to_first_task_p99_ms": round(pct(saturated_pickup, 99) * 1000, 1),
        "submit_p99_ms": round(pct(paced_lat, 99) * 1000, 1),
        "consumer_phase_s": {k: round(v, 2) for k, v in phases.items()},
        "cpu_s": cpu, "consumers": args.consumers, "submitters": args.submitters}))


if __name__ == "__main__":
    main()

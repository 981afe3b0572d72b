"""The worker's verification pool (warm, bounded) and the call-action channel to the worker."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from core.settings import ROOT
from media.app import HUB
from media.call import Call
from media.verification_pool import POOL_NICENESS, PoolBusy, VerificationPool
from signaling.placement import CallStart, WorkerPlacement
from tests.media.conftest import Worker
from verify.idnumber import check_id_number


async def test_jobs_run_in_a_warm_pool_and_a_full_queue_refuses_at_once() -> None:
    pool = VerificationPool(processes=1, max_pending=1)
    await pool.start()
    try:
        checked = await pool.run(check_id_number, "420115196503120027", date(2026, 1, 1))
        assert checked.valid
        job = asyncio.ensure_future(pool.run(time.sleep, 0.5))
        await asyncio.sleep(0.05)
        assert pool.load == 1.0
        with pytest.raises(PoolBusy):
            await pool.run(time.sleep, 0.1)
        await job
        assert pool.load == 0.0 and pool.figures()["refused"] == 1
        assert pool.cpu_seconds() > 0  # the spawned process loaded the models
    finally:
        await pool.stop()


async def test_pool_processes_yield_to_the_worker_keep_to_their_cpus_and_die_with_it(
        ) -> None:
    # A worker that died left its pool (models loaded) running; and the pool's dlib work
    # must not take the CPU the calls' video needs.
    script = (
        "import asyncio, os, psutil\n"
        "from media.verification_pool import VerificationPool\n"
        "async def main():\n"
        "    pool = VerificationPool(processes=1, max_pending=1, cpus=(0,))\n"
        "    await pool.start()\n"
        "    p = psutil.Process(pool._pids[0])\n"
        "    print(pool._pids[0], p.nice(), *p.cpu_affinity(), flush=True)\n"
        "    os._exit(9)  # dies without stopping its pool\n"
        "asyncio.run(main())\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    pid, nice, *cpus = (int(v) for v in out.split())
    assert nice >= POOL_NICENESS
    assert cpus == [0]  # on the CPUs it was given (MEDIA_VERIFY_CPUS), not the worker's
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the pool process outlived its worker"
        await asyncio.sleep(0.1)


async def test_signaling_forwards_a_call_action_to_the_worker(
        worker: Worker, placement: WorkerPlacement) -> None:
    seen: list[tuple[str, dict[str, Any], str]] = []

    async def echo(call: Call, body: dict[str, Any], actor: str) -> dict[str, Any]:
        seen.append((call.call_id, body, actor))
        return {"ok": True, "n": body["n"] + 1}

    worker.server.app[HUB].actions["echo"] = echo
    await placement.start_call(CallStart("call-act", "t-act", "YL-CB", "T-9", "村", "clerk1",
                                         "张敏"))
    # No participant joined yet: the worker has no call, and says so.
    gone = await placement.call_action("call-act", "echo", "clerk1", {"n": 1})
    assert gone["error"]["code"] == "no_call"
    await worker.server.app[HUB]._call_for("call-act")  # the first join creates it
    assert await placement.call_action("call-act", "echo", "clerk1", {"n": 1}) == {
        "ok": True, "n": 2}
    assert seen == [("call-act", {"n": 1}, "clerk1")]
    unknown = await placement.call_action("call-act", "launch", "clerk1", {})
    assert unknown["error"]["code"] == "unknown_action"
    await placement.stop_call("call-act", "hangup")

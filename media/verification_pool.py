"""The worker's process pool for `verify/` work: started and warmed with the worker, bounded.

dlib and OpenCV never run on the event loop: each job is a picklable call of a pure
`verify` function in one of the pool's processes (spawned, so no aiortc thread is copied
into them). The models are loaded when the worker starts, not on the first check. The
queue is bounded: at its limit a job is refused at once with a reason (`PoolBusy`) rather
than slowing every call; the share of the queue in use counts in the worker's load.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]

log = logging.getLogger("media.verification_pool")

T = TypeVar("T")
WARM_TIMEOUT_S = 120.0


class PoolBusy(Exception):
    """The pool's queue is full: the check waits in line elsewhere or is refused."""

    code = "verification_busy"
    message = "核验服务繁忙，请稍后再试"


class PoolTimeout(Exception):
    code = "verification_timeout"
    message = "核验超时，请重试"


# Pool processes yield the CPU to the worker's own loop: a check may take a little longer
# on a busy machine, but the calls' video must not (30 fps fell to 3 during a check).
POOL_NICENESS = 10


PR_SET_PDEATHSIG = 1  # prctl(2)


def pool_process_start(cpus: tuple[int, ...] = ()) -> None:
    """Each pool process's initializer: lower priority, on its own CPUs when given, and gone
    with the worker (a worker that died left its pool processes running, models loaded)."""
    os.nice(POOL_NICENESS)
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:  # a CPU the machine lacks: run where the worker runs
            log.warning("pool CPUs not applied", extra={"cpus": list(cpus), "error": str(exc)})
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("pool process not tied to the worker", extra={"errno": ctypes.get_errno()})


def warm() -> int:
    """Run in each pool process at start: load the dlib models once, there."""
    from verify import face_model

    face_model.warm_up()
    return os.getpid()


class VerificationPool:
    def __init__(self, processes: int, max_pending: int, cpus: tuple[int, ...] = ()) -> None:
        self.processes = max(1, processes)
        self.cpus = cpus
        self.max_pending = max(1, max_pending)
        self.pending = 0
        self.done = 0
        self.refused = 0
        self.busy_s = 0.0  # wall time jobs spent in the pool, for the health figures
        self._pool: ProcessPoolExecutor | None = None
        self._pids: list[int] = []

    async def start(self) -> None:
        """Spawn the processes and wait until each has loaded the models."""
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.processes, mp_context=context,
                                         initializer=pool_process_start,
                                         initargs=(self.cpus,))
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        async with asyncio.timeout(WARM_TIMEOUT_S):
            # One warm-up per process: jobs in flight at once land on different processes.
            self._pids = list(await asyncio.gather(
                *(loop.run_in_executor(self._pool, warm) for _ in range(self.processes))))
        log.info("verification pool warm", extra={
            "processes": self.processes, "ms": round((time.monotonic() - started) * 1000)})

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float = 30.0) -> T:
        """`fn(*args)` in a pool process; PoolBusy at once when the queue is full."""
        if self._pool is None:
            raise RuntimeError("the verification pool is not started")
        if self.pending >= self.max_pending:
            self.refused += 1
            raise PoolBusy
        self.pending += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except TimeoutError as exc:
            raise PoolTimeout from exc
        finally:
            self.pending -= 1
            self.done += 1
            self.busy_s += time.monotonic() - started

    @property
    def load(self) -> float:
        """The share of the queue in use, in [0, 1]."""
        return min(1.0, self.pending / self.max_pending)

    def cpu_seconds(self) -> float:
        """CPU the pool's processes have used so far (they count in the worker's load)."""
        total = 0.0
        for pid in self._pids:
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
        return total

    def figures(self) -> dict[str, float | int]:
        return {"processes": self.processes, "pending": self.pending,
                "max_pending": self.max_pending, "done": self.done, "refused": self.refused,
                "busy_s": round(self.busy_s, 3), "cpu_s": round(self.cpu_seconds(), 3)}

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Never block the loop on a stuck child: shut down in a thread, bounded.
            await asyncio.wait_for(asyncio.to_thread(pool.shutdown, True, cancel_futures=True),
                                   timeout=10)

"""Background loops of every process: started together, stopped together, never stuck.

On Python 3.11 `asyncio.wait_for` swallows a cancellation that lands just as the awaited
thing completes. redis-py sends every command through it (with a socket timeout), so a
loop cancelled at shutdown may see no CancelledError and go round forever, holding the
shutdown. Loops check `raise_if_cancelling()` after each pass, and wait with
`wait_for_event()` (built on `asyncio.timeout`, which keeps the cancellation).
`Background` runs each periodic step with that discipline; signaling, the media worker
and the approval worker all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("core.loops")

Step = Callable[[], Awaitable[object]]
# Failures a step may meet when a store is briefly away: logged, then the next pass retries.
TRANSIENT: tuple[type[BaseException], ...] = (RedisError, ConnectionError, OSError,
                                              TimeoutError)


def raise_if_cancelling() -> None:
    """Raise CancelledError if this task was asked to stop, even if the request got lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_for_event(event: asyncio.Event, timeout_s: float) -> None:
    """Until `event` is set or `timeout_s` passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


async def every(interval_s: float, step: Step, name: str,
                transient: tuple[type[BaseException], ...] = TRANSIENT) -> None:
    """Run `step` forever, `interval_s` apart; a transient failure is logged, not fatal."""
    while True:
        try:
            await step()
        except transient as exc:
            log.warning("background step failed", extra={"step": name, "error": repr(exc)})
        except Exception:
            # A bug in one pass must not stop the loop for the life of the process.
            log.exception("background step crashed", extra={"step": name})
        raise_if_cancelling()
        await asyncio.sleep(interval_s)


class Background:
    """The background tasks of one process: each named, all cancelled and awaited on stop."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        return task

    def every(self, name: str, interval_s: float, step: Step,
              transient: tuple[type[BaseException], ...] = TRANSIENT) -> asyncio.Task[None]:
        return self.start(name, every(interval_s, step, name, transient))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel every task and wait for them (bounded: a stuck one is logged, not awaited)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            log.error("background task did not stop", extra={"task": task.get_name()})
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("background task failed", extra={"task": task.get_name()},
                          exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

"""Helpers for background loops that must stop when their task is cancelled.

On Python 3.11 `asyncio.wait_for` swallows a cancellation that lands just as the awaited
thing completes. redis-py sends every command through it (with a socket timeout), so a
loop cancelled at shutdown may see no CancelledError and go round forever, holding the
shutdown. Loops check `raise_if_cancelling()` after each pass, and wait with
`wait_for_event()` (built on `asyncio.timeout`, which keeps the cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib


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

"""Background loops stop when cancelled, even if a step swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from core.loops import raise_if_cancelling, wait_for_event


async def test_a_loop_stops_although_a_step_swallowed_its_cancellation() -> None:
    passes = 0
    inside = asyncio.Event()

    async def swallowing_step() -> None:
        inside.set()
        with contextlib.suppress(asyncio.CancelledError):  # as wait_for may on 3.11
            await asyncio.sleep(3600)

    async def loop() -> None:
        nonlocal passes
        while True:
            await swallowing_step()
            passes += 1
            raise_if_cancelling()

    task = asyncio.create_task(loop())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert passes == 1


async def test_wait_for_event_returns_when_set_or_timed_out() -> None:
    event = asyncio.Event()
    await wait_for_event(event, 0.01)  # times out quietly
    asyncio.get_running_loop().call_soon(event.set)
    await wait_for_event(event, 3600)
    assert event.is_set()

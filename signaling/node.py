"""One signaling node: the routing parts wired together, and their background loops.

Collaborators come in: the Redis client, the engine, the clock and the media side (a
`CallPlacement`), so tests build a node around fakes and feed times. Each part owns one
concern: `delivery` (sockets, fan-out), `positions` (queue places), `offers`
(reservations), `calls`, `terminals` and `clerks` (the intents of each kind of client),
`sweeps` (timers).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from core.clock import Clock
from core.loops import Background
from core.settings import Settings
from signaling.calls import Calls
from signaling.catalogue import Catalogue
from signaling.clerks import Clerks
from signaling.delivery import Delivery
from signaling.offers import Offers
from signaling.placement import CallPlacement
from signaling.positions import Positions, WaitEstimates
from signaling.queue_store import QueueStore
from signaling.sweeps import Sweeps
from signaling.terminals import Terminals

log = logging.getLogger("signaling.node")

SWEEP_INTERVAL_S = 0.2
FIGURES_INTERVAL_S = 2.0
ABSENCE_INTERVAL_S = 1.0


class SignalingNode:
    def __init__(self, settings: Settings, redis: aioredis.Redis, catalogue: Catalogue,
                 placement: CallPlacement, clock: Clock,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.catalogue = catalogue
        self.store = QueueStore(redis)
        self.delivery = Delivery(redis, settings.node_id)
        self.estimates = WaitEstimates(settings.default_handle_time_s)
        self.positions = Positions(self.store, self.delivery.conns, catalogue, self.estimates,
                                   settings.position_refresh_s)
        self.offers = Offers(settings, self.store, self.delivery, self.positions, catalogue,
                             clock, rng)
        self.calls = Calls(settings, self.store, self.delivery, self.positions, self.offers,
                           placement, clock)
        self.terminals = Terminals(settings, self.store, self.delivery, self.positions,
                                   self.offers, self.calls, catalogue, clock)
        self.clerks = Clerks(settings, self.store, self.delivery, self.offers, self.calls,
                             clock)
        self.sweeps = Sweeps(settings, self.store, self.delivery.conns, self.offers,
                             self.terminals, self.clerks, catalogue)
        self.loops = Background()
        self._cleanups: set[asyncio.Task[None]] = set()

    # --- node events -------------------------------------------------------------------

    def on_event(self, event: dict[str, str]) -> None:
        if event.get("event") == "queue_changed" and "item" in event:
            self.positions.changed(str(event["item"]))

    async def resync(self) -> None:
        """A fresh snapshot to every local client (after the fan-out listener had a gap)."""
        for conn in self.delivery.conns.all():
            kind, _, who = conn.target.partition(":")
            if kind == "terminal":
                await self.terminals.snapshot(who, conn)
            elif kind == "clerk":
                await self.clerks.snapshot(who, conn)
        for code in self.catalogue.codes():
            self.positions.changed(code)

    # --- lifecycle -----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a connection's clean-up as a task this node keeps alive until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    async def start(self) -> None:
        await self.estimates.refresh(self.store, self.catalogue.codes())
        self.loops.start("fanout-listener", self.delivery.listen(self.on_event, self.resync))
        self.loops.every("sweep", SWEEP_INTERVAL_S, lambda: self.sweeps.once(self.clock()))
        self.loops.every("reap", 1.0, self.sweeps.reap_dead_clerks)
        self.loops.every("absent", ABSENCE_INTERVAL_S,
                         lambda: self.sweeps.notice_absent(self.clock()))
        self.loops.every("rebalance", 1.0, self.sweeps.rebalance)
        self.loops.every("figures", FIGURES_INTERVAL_S,
                         lambda: self.estimates.refresh(self.store, self.catalogue.codes()))
        self.loops.every("presence", self.sweeps.refresh_s, self.sweeps.refresh_presence)
        self.loops.every("positions", 0, self.positions.step)

    async def stop(self, drain_s: float = 5.0) -> None:
        await self.loops.stop()
        if self._cleanups:
            # Let the clean-ups of closed connections finish (bounded) before Redis goes.
            await asyncio.wait(set(self._cleanups), timeout=drain_s)


NODE = web.AppKey("node", SignalingNode)

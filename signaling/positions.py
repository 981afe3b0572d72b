"""Queue positions and estimated waits of the terminals waiting on this node.

A queue change marks its item; one item's positions are pushed at most every
POSITION_GAP_S, never ahead of clerks' intents in flight, and only to terminals whose
place, state or estimate changed. The periodic refresh still tells every waiting
terminal its status, one item at a time spread over the refresh period. When to push
what is decided by `PositionSchedule` (pure, `now` passed in).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from core.fanout import terminal_target
from core.loops import wait_for_event
from core.messages import QueueStatus
from core.states import TicketState
from signaling.catalogue import Catalogue
from signaling.connections import Connections
from signaling.queue_records import Ticket
from signaling.queue_store import QueueStore
from signaling.routing import estimate_wait

POSITION_GAP_S = 0.25  # one item's positions are recomputed at most this often
CALM_WAIT_S = 0.5  # position pushes wait at most this long for clerks' intents in flight
POSITIONS_CHUNK = 25  # terminals told before other work may run

Shown = tuple[str, int, int, int]  # (state, position, total, wait) last sent


@dataclass
class LocalTerminal:
    """A terminal waiting on this node: which ticket, and what it was last told."""

    ticket_id: str
    item_code: str
    since: float
    conn_id: str  # the connection that registered it (a newer one replaces it)
    shown: Shown | None = None


def shown(status: QueueStatus) -> Shown:
    return (status.state, status.position, status.waiting_total, status.estimated_wait_s)


@dataclass
class PositionSchedule:
    """Which item's positions to push next: pure, times come in."""

    gap_s: float
    period_s: float
    dirty: set[str] = field(default_factory=set)
    pushed_at: dict[str, float] = field(default_factory=dict)
    refresh_at: float = 0.0
    refresh_turn: int = 0

    def mark(self, item_code: str) -> None:
        self.dirty.add(item_code)

    def next(self, now: float, codes: list[str]) -> tuple[str | None, bool, float]:
        """(item to push now or None, whether it is the periodic refresh, when to look
        again). A changed item not pushed within the gap comes first; then the refresh
        takes the next item when it is due."""
        dues = []
        for item in sorted(self.dirty):
            last = self.pushed_at.get(item)
            due = now if last is None else last + self.gap_s
            if due <= now:
                return item, False, now
            dues.append(due)
        if now >= self.refresh_at:
            self.refresh_at = now + self.period_s / max(len(codes), 1)
            if codes:
                self.refresh_turn = (self.refresh_turn + 1) % len(codes)
                return codes[self.refresh_turn], True, now
        return None, False, min([self.refresh_at, *dues])

    def pushed(self, item_code: str, now: float) -> None:
        self.dirty.discard(item_code)
        self.pushed_at[item_code] = now


class WaitEstimates:
    """Staffed clerks and recent handle times per item, refreshed every few seconds."""

    def __init__(self, default_handle_time_s: float) -> None:
        self.default_handle_time_s = default_handle_time_s
        self.staffed: dict[str, int] = {}
        self.handle_times: dict[str, list[float]] = {}

    async def refresh(self, store: QueueStore, codes: list[str]) -> None:
        staffed: dict[str, int] = {}
        for c in await store.roster():
            if c.status != "offline":
                for skill in c.skills:
                    staffed[skill] = staffed.get(skill, 0) + 1
        self.staffed = staffed
        self.handle_times = await store.handle_times_of(codes)

    def estimate(self, item_code: str, position: int) -> int:
        return estimate_wait(position, self.staffed.get(item_code, 0),
                             self.handle_times.get(item_code, []), self.default_handle_time_s)


class Positions:
    def __init__(self, store: QueueStore, conns: Connections, catalogue: Catalogue,
                 estimates: WaitEstimates, refresh_s: float) -> None:
        self.store = store
        self.conns = conns
        self.catalogue = catalogue
        self.estimates = estimates
        self.schedule = PositionSchedule(POSITION_GAP_S, refresh_s)
        self.waiting_here: dict[str, LocalTerminal] = {}  # terminal id → its ticket, here
        self._wake = asyncio.Event()
        self._urgent = 0  # clerks' intents in flight; position pushes wait for them
        self._calm = asyncio.Event()
        self._calm.set()

    # --- who waits here --------------------------------------------------------------

    def watch(self, terminal_id: str, ticket: Ticket, conn_id: str) -> LocalTerminal:
        here = LocalTerminal(ticket.ticket_id, ticket.item_code, ticket.enqueued_at, conn_id)
        self.waiting_here[terminal_id] = here
        return here

    def forget(self, terminal_id: str, conn_id: str = "") -> None:
        """Stop pushing to a terminal (with `conn_id`: only if that connection registered
        it, so a late clean-up never undoes a newer connection)."""
        here = self.waiting_here.get(terminal_id)
        if here is not None and (not conn_id or here.conn_id == conn_id):
            del self.waiting_here[terminal_id]

    def hand_over(self, terminal_id: str, old_conn_id: str, new_conn_id: str) -> None:
        """A terminal's registering connection closed while another of it stays here."""
        here = self.waiting_here.get(terminal_id)
        if here is not None and here.conn_id == old_conn_id:
            here.conn_id = new_conn_id

    async def status_of(self, ticket: Ticket) -> QueueStatus | None:
        [(position, total)] = await self.store.positions([ticket])
        if position is None:
            return None
        return QueueStatus(
            ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            state="offered" if ticket.state == TicketState.OFFERED else "waiting",
            position=position, waiting_total=total,
            estimated_wait_s=self.estimates.estimate(ticket.item_code, position),
            since=ticket.enqueued_at,
        )

    # --- changes ---------------------------------------------------------------------

    def changed(self, item_code: str) -> None:
        """An item's queue changed (here or on another node): push its positions soon."""
        self.schedule.mark(item_code)
        self._wake.set()

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """A clerk's intent in flight: bulk position pushes wait until it is done."""
        self._urgent += 1
        self._calm.clear()
        try:
            yield
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._calm.set()

    # --- pushing ---------------------------------------------------------------------

    async def step(self) -> None:
        """One pass of the positions loop: push one item, or wait until one is due."""
        loop = asyncio.get_running_loop()
        item, refresh, wake = self.schedule.next(loop.time(), self.catalogue.codes())
        if item is None:
            self._wake.clear()
            await wait_for_event(self._wake, max(wake - loop.time(), 0.001))
            return
        if self._urgent:
            # Offers first: a bulk push waits (bounded) for clerks' intents in flight.
            await wait_for_event(self._calm, CALM_WAIT_S)
        self.schedule.pushed(item, loop.time())
        await self.push_item(item, unchanged_too=refresh)

    async def push_item(self, item_code: str, unchanged_too: bool = False) -> None:
        """One item's local waiting terminals: one Redis round trip for the whole queue,
        then a message to those whose place, state or estimate changed (`unchanged_too`:
        to all, as the periodic refresh promises)."""
        local = [(tid, lt) for tid, lt in self.waiting_here.items() if lt.item_code == item_code]
        if not local:
            return
        view = await self.store.queue_view(item_code)
        place = {ticket_id: (n, state) for n, (ticket_id, state) in enumerate(view, 1)}
        told = 0
        for terminal_id, lt in local:
            if self.waiting_here.get(terminal_id) is not lt:
                continue  # joined again or left meanwhile
            found = place.get(lt.ticket_id)
            if found is None:
                self.waiting_here.pop(terminal_id, None)  # in a call, or gone
                continue
            position, state = found
            msg = QueueStatus(
                ticket_id=lt.ticket_id, item_code=item_code,
                state="offered" if state == TicketState.OFFERED else "waiting",
                position=position, waiting_total=len(view),
                estimated_wait_s=self.estimates.estimate(item_code, position), since=lt.since)
            now_shown = shown(msg)
            if now_shown == lt.shown and not unchanged_too:
                continue
            lt.shown = now_shown
            for conn in self.conns.of(terminal_target(terminal_id)):
                conn.send_model(msg)
            told += 1
            if told % POSITIONS_CHUNK == 0:
                await asyncio.sleep(0)  # let their writers and any intent run

"""The periodic sweeps of routing: expired offers, abandoned terminals, wrap-ups, dead clerks.

Each sweep takes `now`, so a test moves time instead of sleeping. Every node runs them;
each change is a script that applies once, so two nodes sweeping together tell people
once.
"""

from __future__ import annotations

import logging

from core import keys
from core.settings import Settings
from core.states import ClerkStatus, LeaveReason, OfferEnd
from signaling.absence import Absence, judge, noticed_deadline
from signaling.catalogue import Catalogue
from signaling.clerks import Clerks
from signaling.connections import Connections
from signaling.offers import Offers
from signaling.queue_store import QueueStore
from signaling.terminals import Terminals

log = logging.getLogger("signaling.sweeps")

PRESENCE_SLICE = 100  # presence keys refreshed per Redis round trip
REBALANCE_LOCK_MS = 900


class Sweeps:
    def __init__(self, settings: Settings, store: QueueStore, conns: Connections,
                 offers: Offers, terminals: Terminals, clerks: Clerks,
                 catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.conns = conns
        self.offers = offers
        self.terminals = terminals
        self.clerks = clerks

    async def once(self, now: float) -> None:
        """Offers past their time, terminals past their grace, wrap-ups that are over."""
        for offer_id in await self.store.due_offers(now):
            offer = await self.store.offer(offer_id)
            if offer is None:
                await self.store.forget_offer(offer_id)
                continue
            await self.offers.release(offer, "offers_timed_out", True, "未接听", OfferEnd.TIMEOUT)
        for tid in await self.store.due_disconnected(now):
            ticket = await self.store.ticket_of_terminal(tid)
            if ticket is None:
                await self.store.mark_connected(tid)
                continue
            await self.terminals.drop(ticket, LeaveReason.ABANDONED, keys.terminal_presence(tid))
        for username in await self.store.due_wrapups(now):
            if await self.store.wrapup_done(username, now, only_if_due=True):
                await self.offers.push_clerk_state(username)
                await self.offers.for_clerk(username)

    async def notice_absent(self, now: float) -> int:
        """Waiting terminals connected nowhere (their node died, or a clean-up was lost)
        start their grace period; `once` abandons them at its end. Returns how many."""
        started = 0
        for terminal_id, deadline in await self.store.absent_terminals(self.catalogue.codes()):
            if judge(deadline, now) is Absence.START_GRACE:
                s = self.settings
                await self.store.mark_disconnected(terminal_id, noticed_deadline(
                    now, s.terminal_grace_s, s.terminal_presence_ttl_s, self.refresh_s))
                started += 1
        if started:
            log.info("absent terminals noticed", extra={"terminals": started})
        return started

    async def reap_dead_clerks(self) -> None:
        """Clerks whose presence expired (their node died, or the connection hung)."""
        for c in await self.store.roster():
            if c.status != ClerkStatus.OFFLINE and not c.present and await self.store.clerk_gone(
                    c.username, ""):
                await self.clerks.left(c.username)

    async def rebalance(self) -> None:
        """Safety net: offer every idle ready clerk its next applicant (one node at a time)."""
        if not await self.store.take_routing_lock(self.settings.node_id, REBALANCE_LOCK_MS):
            return
        for username in await self.store.ready_usernames():
            await self.offers.for_clerk(username)

    @property
    def refresh_s(self) -> float:
        """How often this node refreshes the presence keys of its connections."""
        return self.settings.clerk_presence_ttl_s / 3

    async def refresh_presence(self) -> None:
        """Keep the presence keys of this node's connections alive."""
        conns = self.conns.all()
        # In slices, so thousands of connections never hold the loop in one go.
        for start in range(0, len(conns), PRESENCE_SLICE):
            entries = []
            for conn in conns[start:start + PRESENCE_SLICE]:
                kind, _, who = conn.target.partition(":")
                if kind == "clerk":
                    entries.append((keys.clerk_presence(who), conn.conn_id,
                                    self.settings.clerk_presence_ttl_s))
                elif kind == "terminal":
                    entries.append((keys.terminal_presence(who), conn.conn_id,
                                    self.settings.terminal_presence_ttl_s))
            await self.store.refresh_presences(entries)

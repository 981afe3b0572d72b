"""The clerks' side of routing: connect, ready / not ready, answer offers, wrap up.

A clerk's connection keeps a presence key alive; a clerk whose presence is gone leaves
routing (`signaling.sweeps`) and its pending offer goes back to the applicant's place.
"""

from __future__ import annotations

import logging

from core import keys
from core.clock import Clock
from core.messages import Hello
from core.settings import Settings
from core.states import ClerkStatus, OfferEnd
from signaling.auth import Session
from signaling.calls import Calls
from signaling.client_error import ClientError
from signaling.connections import Connection
from signaling.delivery import Delivery
from signaling.offers import Offers, clerk_state
from signaling.queue_store import QueueStore

log = logging.getLogger("signaling.clerks")


class Clerks:
    def __init__(self, settings: Settings, store: QueueStore, delivery: Delivery,
                 offers: Offers, calls: Calls, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.delivery = delivery
        self.offers = offers
        self.calls = calls
        self.clock = clock

    async def connected(self, session: Session, conn: Connection) -> None:
        """Profile and presence, hello, then the snapshot: state, open offer, call."""
        u = session.who
        now = self.clock()
        await self.store.upsert_clerk(u, session.display_name, session.skills,
                                      session.jurisdictions, session.region_code, now)
        await self.store.set_presence(keys.clerk_presence(u), conn.conn_id,
                                      self.settings.clerk_presence_ttl_s)
        clerk = await self.store.clerk(u)
        if clerk is not None and clerk.status == ClerkStatus.OFFLINE:
            await self.store.set_status(u, ClerkStatus.NOT_READY, "刚登录", now)
            clerk = await self.store.clerk(u)
        if clerk is None:
            raise ClientError("no_clerk", "请重新登录")
        conn.send_model(Hello(role="clerk", who=u, display_name=session.display_name,
                              node_id=self.settings.node_id))
        await self.snapshot(u, conn)

    async def snapshot(self, u: str, conn: Connection) -> None:
        """What the console must know now: its state, its open offer, its call."""
        clerk = await self.store.clerk(u)
        if clerk is None:
            return
        conn.send_model(clerk_state(clerk))
        if clerk.offer_id:
            offer = await self.store.offer(clerk.offer_id)
            ticket = await self.store.ticket(offer.ticket_id) if offer else None
            if offer is not None and ticket is not None:
                conn.send_model(self.offers.offer_message(offer, ticket))
        if clerk.call_id:
            call = await self.store.call(clerk.call_id)
            if call is not None and call.active:
                conn.send_model(await self.calls.assigned(call, u, "clerk"))

    async def disconnected(self, session: Session, conn: Connection) -> None:
        if self.delivery.conns.of(conn.target):
            return
        if await self.store.clerk_gone(session.who, conn.conn_id):
            await self.left(session.who)

    async def left(self, username: str) -> None:
        """A clerk went offline: its pending offer goes back to the applicant's place."""
        log.info("clerk offline", extra={"clerk": username})
        await self.offers.withdraw_of(await self.store.clerk(username))

    async def set_status(self, session: Session, status: str, reason: str | None) -> None:
        u = session.who
        if status == ClerkStatus.READY:
            await self.offers.go_ready(u, reason or "")
            return
        clerk = await self.store.clerk(u)
        if clerk is None:
            raise ClientError("no_clerk", "请重新登录")
        await self.offers.withdraw_of(clerk)
        await self.store.set_status(u, status, reason or "", self.clock())
        await self.offers.push_clerk_state(u)

    async def reject(self, session: Session, offer_id: str) -> None:
        offer, _ = await self.calls.own_offer(session, offer_id)
        await self.offers.release(offer, "offers_rejected", True, "拒绝接听", OfferEnd.REJECTED)

    async def wrapup_done(self, session: Session) -> None:
        if await self.store.wrapup_done(session.who, self.clock(), only_if_due=False):
            await self.offers.push_clerk_state(session.who)
            await self.offers.for_clerk(session.who)

"""The village terminals' side of routing: connect, join the queue, leave, come back.

A terminal that drops keeps its place for a grace period (a reload, a network blip); one
that does not come back in time is abandoned by the sweep (`signaling.sweeps`).
"""

from __future__ import annotations

import logging

from core import keys
from core.clock import Clock
from core.messages import Hello, LeftQueue, OfferClosed
from core.ops_figures import VisitEvent, VisitKind
from core.settings import Settings
from core.states import LeaveReason, OfferEnd, TicketState
from signaling.auth import Session
from signaling.calls import Calls
from signaling.catalogue import Catalogue
from signaling.client_error import ClientError
from signaling.connections import Connection
from signaling.delivery import Delivery
from signaling.offers import Offers, new_id
from signaling.positions import Positions, shown
from signaling.queue_records import Ticket
from signaling.queue_store import QueueStore
from signaling.visit_log import note_visit

log = logging.getLogger("signaling.terminals")


def may_route(session: Session, region: str) -> bool:
    """Its own province, or a partner region named in the terminal's record (跨省通办)."""
    allowed = (session.region_code[:2], *session.handling_regions)
    return any(p and region.startswith(p) for p in allowed)


class Terminals:
    def __init__(self, settings: Settings, store: QueueStore, delivery: Delivery,
                 positions: Positions, offers: Offers, calls: Calls, catalogue: Catalogue,
                 clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.delivery = delivery
        self.positions = positions
        self.offers = offers
        self.calls = calls
        self.catalogue = catalogue
        self.clock = clock

    async def connected(self, session: Session, conn: Connection) -> None:
        """Presence, hello, then the snapshot: its place in the queue, or its call."""
        tid = session.who
        await self.store.set_presence(keys.terminal_presence(tid), conn.conn_id,
                                      self.settings.terminal_presence_ttl_s)
        await self.store.mark_connected(tid)
        conn.send_model(Hello(role="terminal", who=tid, display_name=session.display_name,
                              node_id=self.settings.node_id))
        await self.snapshot(tid, conn)

    async def snapshot(self, tid: str, conn: Connection) -> None:
        """What the terminal must know now: its place in the queue, or its call."""
        ticket = await self.store.ticket_of_terminal(tid)
        if ticket is None:
            self.positions.forget(tid)
            abandoned = await self.store.take_abandoned_note(tid)
            if abandoned is not None:  # it stayed away too long: it starts again
                conn.send_model(LeftQueue(ticket_id=abandoned, reason=LeaveReason.ABANDONED))
            return
        if ticket.waiting:
            here = self.positions.watch(tid, ticket, conn.conn_id)
            status = await self.positions.status_of(ticket)
            if status is not None:
                here.shown = shown(status)
                conn.send_model(status)
            # Nobody was offered it while it was away: it may be offered again now.
            await self.offers.for_ticket(ticket)
        elif ticket.call_id:
            call = await self.store.call(ticket.call_id)
            if call is not None and call.active:
                conn.send_model(await self.calls.assigned(call, tid, "terminal"))

    async def disconnected(self, session: Session, conn: Connection) -> None:
        """The clean-up of one closed connection; it never undoes a newer connection's
        state (the presence and the local registration are compared by connection id)."""
        tid = session.who
        others = self.delivery.conns.of(conn.target)
        if others:  # another connection of this terminal is still here: it carries on
            self.positions.hand_over(tid, conn.conn_id, others[0].conn_id)
            return
        self.positions.forget(tid, conn.conn_id)
        # The applicant keeps the place for a grace period (a reload, a network blip).
        await self.store.terminal_gone(tid, conn.conn_id,
                                       self.clock() + self.settings.terminal_grace_s)

    async def join_queue(self, session: Session, conn_id: str, item_code: str, priority: bool,
                         handling_region: str | None) -> None:
        if self.catalogue.get(item_code) is None:
            raise ClientError("unknown_item", "没有找到这个事项，请重新选择")
        region = handling_region or session.region_code
        if not may_route(session, region):
            raise ClientError("region_not_allowed", "本终端不能办理这个地区的事项，请咨询工作人员")
        priority = priority and session.priority_allowed  # the terminal's record decides
        now = self.clock()
        ticket = Ticket(
            ticket_id=new_id("tk"), terminal_id=session.who, terminal_name=session.display_name,
            village=session.village, item_code=item_code,
            handling_region=region, priority=priority,
            enqueued_at=now, state=TicketState.WAITING, offer_id="", call_id="",
        )
        held = await self.store.join(ticket)
        if held != ticket.ticket_id:
            existing = await self.store.ticket(held)
            if existing is not None and existing.state == TicketState.IN_CALL:
                raise ClientError("in_call", "您正在通话中")
            if existing is not None:
                here = self.positions.watch(session.who, existing, conn_id)
                status = await self.positions.status_of(existing)
                if status is not None:
                    here.shown = shown(status)
                    await self.delivery.to_terminal(session.who, status)
            return
        log.info("joined queue", extra={"ticket": ticket.ticket_id, "terminal": session.who,
                                        "item": item_code, "priority": priority})
        self.positions.watch(session.who, ticket, conn_id)
        await note_visit(self.store.r, VisitEvent(VisitKind.JOINED, now, ticket.ticket_id,
                                                  item_code, session.who, session.village))
        await self.offers.for_ticket(ticket)
        await self.offers.announce_queue_change(item_code)

    async def leave_queue(self, session: Session) -> None:
        ticket = await self.store.ticket_of_terminal(session.who)
        if ticket is None:
            return
        if ticket.state == TicketState.IN_CALL:
            raise ClientError("in_call", "通话中不能离开队列，请挂断通话")
        await self.drop(ticket, LeaveReason.LEFT)

    async def drop(self, ticket: Ticket, reason: LeaveReason, unless_present: str = "") -> bool:
        """Take the ticket out of the queue (its open offer is withdrawn), telling everyone.

        With `unless_present` (a presence key), a terminal that is connected again keeps it.
        """
        offer_id = await self.store.remove_ticket(ticket, reason, unless_present)
        if offer_id is None:
            return False
        log.info("left queue", extra={"ticket": ticket.ticket_id, "reason": reason.value})
        now = self.clock()
        await note_visit(self.store.r, VisitEvent(
            VisitKind(reason.value), now, ticket.ticket_id, ticket.item_code,
            ticket.terminal_id, ticket.village, wait_s=now - ticket.enqueued_at))
        self.positions.forget(ticket.terminal_id)
        if offer_id:
            offer = await self.store.offer(offer_id)
            if offer is not None and await self.store.release(
                offer, "offers_withdrawn", False, "", self.clock()
            ):
                await self.delivery.to_clerk(offer.clerk, OfferClosed(
                    offer_id=offer_id, reason=OfferEnd.WITHDRAWN))
                await self.offers.push_clerk_state(offer.clerk)
                await self.offers.for_clerk(offer.clerk)
        await self.delivery.to_terminal(ticket.terminal_id,
                                        LeftQueue(ticket_id=ticket.ticket_id, reason=reason))
        await self.offers.announce_queue_change(ticket.item_code)
        return True

"""Calls in routing: an accepted offer becomes a call, a call ends, a second clerk joins.

The media side is a `CallPlacement` passed in; routing keeps the call's record in Redis
(`signaling.queue_store`) and tells every participant on whichever node they are.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from core.clock import Clock
from core.messages import CallAssigned, CallEnded, CallInvite, MediaJoin, OfferClosed
from core.ops_figures import VisitEvent, VisitKind
from core.settings import Settings
from core.states import CallState, ClerkStatus, OfferEnd
from signaling.auth import Session
from signaling.client_error import ClientError
from signaling.delivery import Delivery
from signaling.offers import Offers, new_id
from signaling.placement import CallPlacement, CallRole, CallStart
from signaling.positions import Positions
from signaling.queue_records import AcceptResult, CallRecord, OfferRecord, Ticket
from signaling.queue_store import QueueStore
from signaling.visit_log import note_visit

log = logging.getLogger("signaling.calls")


def call_message(call: CallRecord, media: MediaJoin | None) -> CallAssigned:
    return CallAssigned(
        call_id=call.call_id, ticket_id=call.ticket_id, item_code=call.item_code,
        terminal_id=call.terminal_id, terminal_name=call.terminal_name,
        clerk_username=call.clerk, clerk_name=call.clerk_name, media=media,
    )


class Calls:
    def __init__(self, settings: Settings, store: QueueStore, delivery: Delivery,
                 positions: Positions, offers: Offers, placement: CallPlacement,
                 clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.delivery = delivery
        self.positions = positions
        self.offers = offers
        self.placement = placement
        self.clock = clock

    async def own_offer(self, session: Session, offer_id: str) -> tuple[OfferRecord, Ticket]:
        offer = await self.store.offer(offer_id)
        if offer is None or offer.clerk != session.who:
            raise ClientError("offer_gone", "这个来电已经结束或转给了其他人")
        ticket = await self.store.ticket(offer.ticket_id)
        if ticket is None:
            raise ClientError("offer_gone", "申请人已经离开")
        return offer, ticket

    async def accept(self, session: Session, offer_id: str) -> None:
        """The clerk takes the offer: the call is placed on a worker, both sides told."""
        offer, ticket = await self.own_offer(session, offer_id)
        now = self.clock()
        call = CallRecord(
            call_id=new_id("call"), ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            terminal_id=ticket.terminal_id, terminal_name=ticket.terminal_name,
            clerk=session.who, clerk_name=session.display_name, state=CallState.ACTIVE,
            started_at=now)
        result = await self.store.accept(offer, ticket, call, now)
        if result == AcceptResult.EXPIRED:
            raise ClientError("offer_expired", "来电已超时")
        if result != AcceptResult.ACCEPTED:
            raise ClientError("offer_gone", "这个来电已经结束或转给了其他人")
        log.info("offer accepted", extra={"offer": offer_id, "call": call.call_id,
                                          "clerk": session.who, "ticket": ticket.ticket_id})
        self.positions.forget(ticket.terminal_id)
        await note_visit(self.store.r, VisitEvent(
            VisitKind.ANSWERED, now, ticket.ticket_id, ticket.item_code, ticket.terminal_id,
            ticket.village, session.who, call.call_id, wait_s=now - ticket.enqueued_at))
        media = await self.placement.start_call(CallStart(
            call_id=call.call_id, ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            terminal_id=ticket.terminal_id, terminal_name=ticket.terminal_name,
            clerk_username=session.who, clerk_name=session.display_name))
        await self.delivery.to_terminal(ticket.terminal_id,
                                        call_message(call, media.get(ticket.terminal_id)))
        await self.delivery.to_clerk(session.who,
                                     OfferClosed(offer_id=offer_id, reason=OfferEnd.ACCEPTED),
                                     call_message(call, media.get(session.who)))
        await self.offers.push_clerk_state(session.who)
        await self.offers.announce_queue_change(ticket.item_code)

    async def assigned(self, call: CallRecord, who: str, role: str) -> CallAssigned:
        """The call as one participant (re)joins it, with fresh media join info."""
        media = await self.placement.join_for(call.call_id, who, role)
        return call_message(call, media)

    async def end(self, call_id: str, reason: str, by: str | None = None) -> None:
        """End a call (hang-up by a clerk in it, or the media side reporting its end)."""
        call = await self.store.call(call_id)
        if call is None:
            raise ClientError("no_call", "没有这个通话")
        if by is not None and by != call.clerk:
            # The call's own clerk ends it; an invited clerk only leaves (even after leaving).
            raise ClientError("not_your_call", "这不是您的通话")
        now = self.clock()
        if not await self.store.end_call(call, now, now + self.settings.wrapup_s, reason):
            return
        log.info("call ended", extra={"call": call_id, "why": reason})
        await note_visit(self.store.r, VisitEvent(
            VisitKind.ENDED, now, call.ticket_id, call.item_code, call.terminal_id,
            clerk=call.clerk, call_id=call_id, handle_s=now - call.started_at))
        await self.placement.stop_call(call_id, reason)
        ended = CallEnded(call_id=call_id, reason=reason)
        await self.delivery.to_terminal(call.terminal_id, ended)
        for clerk in call.clerks():
            await self.delivery.to_clerk(clerk, ended)
        await self.offers.push_clerk_state(call.clerk)

    async def move(self, call_id: str, dead_worker: str) -> bool:
        """The call's media worker died: the call goes on on another worker with the same
        people, who are told to join it there. False when no worker can take it."""
        call = await self.store.call(call_id)
        if call is None or not call.active:
            return False
        roles: dict[str, CallRole] = {call.terminal_id: "terminal", call.clerk: "clerk"}
        if call.second_clerk:
            roles[call.second_clerk] = "second_clerk"
        joins = await self.placement.move_call(CallStart(
            call_id=call.call_id, ticket_id=call.ticket_id, item_code=call.item_code,
            terminal_id=call.terminal_id, terminal_name=call.terminal_name,
            clerk_username=call.clerk, clerk_name=call.clerk_name), roles, dead_worker)
        if joins is None:
            return False
        for who, role in roles.items():
            message = call_message(call, joins[who]).model_copy(update={"rejoin": True})
            if role == "terminal":
                await self.delivery.to_terminal(who, message)
            else:
                await self.delivery.to_clerk(who, message)
        return True

    async def invite(self, session: Session, call_id: str, username: str) -> None:
        """三方连线: the call's clerk invites another clerk who is online."""
        call = await self.store.call(call_id)
        if call is None or not call.active or call.clerk != session.who:
            raise ClientError("not_your_call", "只能邀请到您正在进行的通话")
        other = await self.store.clerk(username)
        if other is None or other.status == ClerkStatus.OFFLINE or username == session.who:
            raise ClientError("clerk_unavailable", "对方不在线")
        await self.store.invite(call_id, username)
        await self.delivery.to_clerk(username, CallInvite(
            call_id=call_id, from_username=session.who, from_name=session.display_name,
            item_code=call.item_code))

    async def join_invited(self, session: Session, call_id: str) -> None:
        """The invited clerk joins: set not ready (its pending offer goes back) and in."""
        call = await self.store.call(call_id)
        if call is None or not call.active or call.invited != session.who:
            raise ClientError("no_invite", "邀请已失效")
        await self.store.join_second_clerk(call_id, session.who)
        await self.offers.withdraw_of(await self.store.clerk(session.who))
        await self.store.set_status(session.who, ClerkStatus.NOT_READY, "三方连线", self.clock())
        await self.offers.push_clerk_state(session.who)
        joined = replace(call, second_clerk=session.who, invited="")
        await self.delivery.to_clerk(session.who,
                                     await self.assigned(joined, session.who, "second_clerk"))

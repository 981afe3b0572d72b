"""Offers: reserving an applicant for a clerk, announcing it, and taking it back.

An offer is a reservation with a timeout. A newly free applicant goes to the eligible
idle clerk the strategy picks; a newly free clerk takes the first eligible applicant
across its items. Eligibility and order come from `signaling.routing` (pure); each
reservation is one script in `signaling.queue_store`, so a lost race just looks again.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import replace

from pydantic import BaseModel

from core.clock import Clock
from core.fanout import clerk_target
from core.messages import ClerkState, Offer, OfferClosed
from core.settings import Settings
from core.states import ClerkActivity, OfferEnd, TicketState
from signaling.catalogue import Catalogue
from signaling.client_error import ClientError
from signaling.delivery import Delivery
from signaling.positions import Positions
from signaling.queue_records import ClerkRecord, OfferRecord, ReserveResult, Ticket
from signaling.queue_store import QueueStore
from signaling.routing import eligible_in_order, pick_clerk

log = logging.getLogger("signaling.offers")

# Queue entries looked at per item when looking for a clerk's next applicant (offered
# applicants keep their place at the head, so a page may hold few still waiting).
HEADS_SCAN = 32
HEADS_WANT = 4  # waiting tickets read per item queue (enough: the first still waiting wins)
CANDIDATES = 8  # applicants offered to one reservation attempt, first still waiting wins
MAX_PAGES = 64
RACE_RETRIES = 4


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def clerk_state(c: ClerkRecord) -> ClerkState:
    return ClerkState(
        status=c.status, reason=c.reason or None, state=c.state,
        offer_id=c.offer_id or None, call_id=c.call_id or None, wrapup_until=c.wrapup_until,
    )


class Offers:
    def __init__(self, settings: Settings, store: QueueStore, delivery: Delivery,
                 positions: Positions, catalogue: Catalogue, clock: Clock,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.store = store
        self.delivery = delivery
        self.positions = positions
        self.catalogue = catalogue
        self.clock = clock
        self.rng = rng or random.Random()

    # --- telling ---------------------------------------------------------------------

    async def push_clerk_state(self, username: str) -> None:
        c = await self.store.clerk(username)
        if c is not None:
            await self.delivery.to_clerk(username, clerk_state(c))

    def queue_changed(self, item_code: str) -> str:
        """The event payload telling every node (this one at once) that a queue changed."""
        self.positions.changed(item_code)
        return self.delivery.event("queue_changed", item=item_code)

    async def announce_queue_change(self, item_code: str) -> None:
        await self.delivery.publish([self.queue_changed(item_code)])

    def offer_message(self, offer: OfferRecord, ticket: Ticket) -> Offer:
        return Offer(
            offer_id=offer.offer_id, ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            item_name=self.catalogue.name_of(ticket.item_code), terminal_id=ticket.terminal_id,
            terminal_name=ticket.terminal_name, village=ticket.village,
            handling_region=ticket.handling_region, priority=ticket.priority,
            waited_s=int(offer.created_at - ticket.enqueued_at), expires_at=offer.expires_at,
        )

    async def announce(self, offer: OfferRecord, ticket: Ticket,
                       clerk: ClerkRecord | None = None, before: ClerkRecord | None = None
                       ) -> None:
        """The offer (to this node's connections at once) and the clerk's state after it
        (`before` it too, if given), published for the other nodes in one round trip with
        the news that the applicant's queue changed."""
        if clerk is None:
            clerk = await self.store.clerk(offer.clerk)
        messages: list[BaseModel] = [self.offer_message(offer, ticket)]
        if before is not None:
            messages.insert(0, clerk_state(before))
        if clerk is not None:
            messages.append(clerk_state(clerk))
        payloads = self.delivery.here(clerk_target(offer.clerk), *messages)
        await self.delivery.publish([*payloads, self.queue_changed(ticket.item_code)])
        log.info("offer made", extra={"offer": offer.offer_id, "clerk": offer.clerk,
                                      "ticket": ticket.ticket_id})

    # --- finding a match -------------------------------------------------------------

    def _new_offer(self) -> tuple[str, float, float]:
        now = self.clock()
        return new_id("of"), now, now + self.settings.offer_timeout_s

    async def for_ticket(self, ticket: Ticket) -> None:
        """Offer a newly free applicant to the eligible idle clerk the strategy picks."""
        excluded: set[str] = set()
        item = self.catalogue.get(ticket.item_code)
        regions = item.clerk_regions if item is not None else []
        for _ in range(RACE_RETRIES):
            current = await self.store.ticket(ticket.ticket_id)
            if current is None or current.state != TicketState.WAITING:
                return
            idle = [c.candidate() for c in await self.store.ready_clerks()
                    if c.username not in excluded and c.free]
            clerk = pick_clerk(current.applicant(), idle, regions,
                               self.settings.routing_strategy, self.rng)
            if clerk is None:
                return
            offer_id, now, expires = self._new_offer()
            result = await self.store.reserve(current, clerk.username, offer_id, now, expires)
            if result == ReserveResult.RESERVED:
                await self.announce(OfferRecord(offer_id, clerk.username, current.ticket_id,
                                                now, expires), current)
            if result != ReserveResult.CLERK_BUSY:
                return
            excluded.add(clerk.username)

    async def for_clerk(self, username: str) -> None:
        """Offer a newly free clerk the first eligible applicant across its items."""
        for _ in range(RACE_RETRIES):
            clerk, candidates = await self.candidates(username, only_if_free=True)
            if clerk is None or not candidates:
                return
            offer_id, now, expires = self._new_offer()
            got = await self.store.reserve_first(candidates, username, offer_id, now, expires)
            if isinstance(got, Ticket):
                # Reserved only if still ready and idle: the rest of the record is as read.
                held = replace(clerk, state=ClerkActivity.OFFERED, offer_id=offer_id)
                await self.announce(OfferRecord(offer_id, username, got.ticket_id, now,
                                                expires), got, held)
                return
            if got == ReserveResult.CLERK_BUSY:
                return

    async def candidates(self, username: str, only_if_free: bool
                         ) -> tuple[ClerkRecord | None, list[Ticket]]:
        """The clerk and its next eligible applicants in queue order (a few, for a
        reservation), read in one round trip unless the queue heads are all ineligible.
        With `only_if_free`, a clerk not ready and idle gets no candidates."""
        regions = self.catalogue.regions()
        starts = dict.fromkeys(self.catalogue.codes(), 0)
        clerk: ClerkRecord | None = None
        for _ in range(MAX_PAGES):
            clerk, heads = await self.store.clerk_heads(username, starts, HEADS_SCAN,
                                                        HEADS_WANT, only_if_free)
            if clerk is None or (only_if_free and not clerk.free):
                return None, []
            waiting = {t.ticket_id: t for h in heads for t in h.waiting}
            ordered = eligible_in_order(clerk.candidate(),
                                        (t.applicant() for t in waiting.values()), regions)
            if ordered:
                return clerk, [waiting[a.ticket_id] for a in ordered[:CANDIDATES]]
            starts = {h.item_code: h.next_start for h in heads if h.more}
            if not starts:
                break
        return clerk, []

    async def go_ready(self, username: str, reason: str) -> None:
        """Ready, and the first eligible applicant reserved in the same step if any waits:
        two round trips (read the heads, then one script) before the offer goes out."""
        clerk, candidates = await self.candidates(username, only_if_free=False)
        if clerk is None:
            raise ClientError("no_clerk", "请重新登录")
        offer_id, now, expires = self._new_offer()
        done = await self.store.ready_first(username, reason, candidates, offer_id, now,
                                            expires)
        if done is None:
            raise ClientError("no_clerk", "请重新登录")
        clerk, got = done
        if got is not None:
            # As if set ready and then offered: ready (and idle) first, then the offer.
            await self.announce(OfferRecord(offer_id, username, got.ticket_id, now, expires),
                                got, clerk, replace(clerk, state=ClerkActivity.IDLE, offer_id=""))
            return
        await self.delivery.to_clerk(username, clerk_state(clerk))
        if candidates and clerk.state == ClerkActivity.IDLE:
            await self.for_clerk(username)  # others took them meanwhile: look again

    # --- taking back -----------------------------------------------------------------

    async def release(self, offer: OfferRecord, counter: str, clerk_not_ready: bool,
                      reason: str, closed: OfferEnd) -> None:
        """End an open offer: the applicant keeps its place, the clerk is told (and set
        not ready with `reason` if asked); each is then matched again."""
        if not await self.store.release(offer, counter, clerk_not_ready, reason, self.clock()):
            return
        log.info("offer released", extra={"offer": offer.offer_id, "why": closed.value,
                                          "clerk": offer.clerk, "ticket": offer.ticket_id})
        await self.delivery.to_clerk(offer.clerk, OfferClosed(offer_id=offer.offer_id,
                                                              reason=closed))
        await self.push_clerk_state(offer.clerk)
        ticket = await self.store.ticket(offer.ticket_id)
        if ticket is not None:
            # The applicant kept its place at the head; try the next eligible clerk.
            await self.for_ticket(ticket)
            await self.announce_queue_change(ticket.item_code)
        if not clerk_not_ready:
            await self.for_clerk(offer.clerk)

    async def withdraw_of(self, clerk: ClerkRecord | None) -> None:
        """The clerk's pending offer, if any, goes back to the applicant's place."""
        if clerk is not None and clerk.offer_id:
            offer = await self.store.offer(clerk.offer_id)
            if offer is not None:
                await self.release(offer, "offers_withdrawn", False, "", OfferEnd.WITHDRAWN)

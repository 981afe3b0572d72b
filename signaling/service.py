"""The queue service of one signaling node: intents in, Redis state changes, messages out.

Decisions come from `signaling.routing` (pure); atomic state changes from
`signaling.queue_store`; delivery to clients on any node through `signaling.fanout`.
Background loops (each bounded, each wait with a timeout) expire offers, drop abandoned
applicants, end wrap-ups, notice dead clerks and refresh queue positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core import keys, records
from core.catalogue import Material, ServiceItem
from core.messages import (
    CallAssigned,
    CallEnded,
    CallInvite,
    ClerkState,
    Hello,
    LeftQueue,
    MediaJoin,
    Offer,
    OfferClosed,
    QueueStatus,
)
from core.settings import Settings
from signaling import calls, fanout
from signaling.auth import Session
from signaling.fanout import Connection, Connections, clerk_target, terminal_target
from signaling.loops import raise_if_cancelling, wait_for_event
from signaling.queue_store import ClerkRecord, OfferRecord, QueueStore, Ticket, strs
from signaling.routing import eligible_in_order, estimate_wait, pick_clerk

log = logging.getLogger("signaling.service")

SWEEP_INTERVAL_S = 0.2
# Queue entries looked at per item when looking for a clerk's next applicant (offered
# applicants keep their place at the head, so a page may hold few still waiting).
HEADS_SCAN = 32
HEADS_WANT = 4  # waiting tickets read per item queue (enough: the first still waiting wins)
CANDIDATES = 8  # applicants offered to one reservation attempt, first still waiting wins
MAX_PAGES = 64
RACE_RETRIES = 4
POSITION_GAP_S = 0.25  # one item's positions are recomputed at most this often
CALM_WAIT_S = 0.5  # position pushes wait at most this long for clerks' intents in flight
POSITIONS_CHUNK = 25  # terminals told before other work may run
PRESENCE_SLICE = 100  # presence keys refreshed per Redis round trip


class ClientError(Exception):
    """An intent that cannot be carried out; the message is shown to the person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class LocalTerminal:
    ticket_id: str
    item_code: str
    since: float
    shown: tuple[str, int, int, int] | None = None  # (state, position, total, wait) last sent


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class QueueService:
    def __init__(self, settings: Settings, redis: aioredis.Redis, engine: AsyncEngine,
                 app: web.Application) -> None:
        self.settings = settings
        self.redis = redis
        self.engine = engine
        self.app = app
        self.store = QueueStore(redis)
        self.conns = Connections()
        self.items: dict[str, ServiceItem] = {}
        self.rng = random.Random()
        self.waiting_here: dict[str, LocalTerminal] = {}  # terminal id → its ticket, this node
        self._staffed: dict[str, int] = {}
        self._handle_times: dict[str, list[float]] = {}
        self._dirty_items: set[str] = set()
        self._dirty = asyncio.Event()
        self._pushed_at: dict[str, float] = {}  # item → loop time of its last position push
        self._refresh_at = 0.0
        self._refresh_turn = 0
        self._urgent = 0  # clerks' intents in flight; position pushes wait for them
        self._calm = asyncio.Event()
        self._calm.set()
        # Messages this node delivered itself are published with this origin; its own
        # listener skips them. Unique per process even if two nodes share a node id.
        self.origin = f"{settings.node_id}.{secrets.token_hex(4)}"
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task this service keeps alive until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout_s: float) -> None:
        """Let spawned cleanups finish (bounded) before the connections close."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    @staticmethod
    def now() -> float:
        return time.time()

    # --- catalogue -------------------------------------------------------------------

    async def load_catalogue(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(records.service_items).where(records.service_items.c.active)
            )).mappings().all()
        self.items = {
            r["code"]: ServiceItem(
                code=r["code"], name=r["name"], plain_name=r["plain_name"],
                synonyms=list(r["synonyms"]), category=r["category"], level=r["level"],
                department=r["department"],
                materials=[Material.model_validate(m) for m in r["materials"]],
                clerk_regions=list(r["clerk_regions"]), workflow=dict(r["workflow"]),
                time_limit_days=r["time_limit_days"],
            )
            for r in rows
        }

    def _item_regions(self) -> dict[str, list[str]]:
        return {code: it.clerk_regions for code, it in self.items.items()}

    # --- delivery --------------------------------------------------------------------

    def deliver_here(self, target: str, *messages: BaseModel) -> list[str]:
        """Send to this node's connections of `target` now; the payloads to publish for
        the other nodes (which deliver to theirs) are returned."""
        texts = [fanout.encode(m) for m in messages]
        local = self.conns.of(target)
        for conn in local:
            for text in texts:
                conn.send(text)
        origin = self.origin if local else ""
        return [fanout.payload(target, text, origin) for text in texts]

    async def publish(self, payloads: Sequence[str]) -> None:
        """Publish on the events channel, several in one round trip."""
        if len(payloads) == 1:
            await self.redis.publish(keys.events_channel(), payloads[0])
        elif payloads:
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in payloads:
                    pipe.publish(keys.events_channel(), p)
                await pipe.execute()

    async def to_clerk(self, username: str, *messages: BaseModel) -> None:
        await self.publish(self.deliver_here(clerk_target(username), *messages))

    async def to_terminal(self, terminal_id: str, *messages: BaseModel) -> None:
        await self.publish(self.deliver_here(terminal_target(terminal_id), *messages))

    def queue_changed_event(self, item_code: str) -> str:
        """The event payload telling every node (this one at once) that a queue changed."""
        self.mark_dirty(item_code)
        return fanout.payload(fanout.EVENT, json.dumps({"event": "queue_changed",
                                                        "item": item_code}), self.origin)

    async def queue_changed(self, item_code: str) -> None:
        await self.publish([self.queue_changed_event(item_code)])

    def mark_dirty(self, item_code: str) -> None:
        self._dirty_items.add(item_code)
        self._dirty.set()

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

    @staticmethod
    def clerk_state(c: ClerkRecord) -> ClerkState:
        return ClerkState(
            status=c.status, reason=c.reason or None, state=c.state,
            offer_id=c.offer_id or None, call_id=c.call_id or None, wrapup_until=c.wrapup_until,
        )

    async def push_clerk_state(self, username: str) -> None:
        c = await self.store.clerk(username)
        if c is not None:
            await self.to_clerk(username, self.clerk_state(c))

    # --- terminals -------------------------------------------------------------------

    async def terminal_connected(self, session: Session, conn: Connection) -> None:
        tid = session.who
        await self.store.set_presence(keys.terminal_presence(tid), conn.conn_id,
                                      self.settings.terminal_grace_s)
        await self.store.mark_connected(tid)
        conn.send_model(Hello(role="terminal", who=tid, display_name=session.display_name,
                              node_id=self.settings.node_id))
        ticket = await self.store.ticket_of_terminal(tid)
        if ticket is None:
            self.waiting_here.pop(tid, None)
            return
        if ticket.state in ("waiting", "offered"):
            here = LocalTerminal(ticket.ticket_id, ticket.item_code, ticket.enqueued_at)
            self.waiting_here[tid] = here
            status = await self.queue_status(ticket)
            if status is not None:
                here.shown = _shown(status)
                conn.send_model(status)
        elif ticket.call_id:
            call = await self.store.call(ticket.call_id)
            if call.get("state") == "active":
                conn.send_model(await self.call_assigned(call, tid, "terminal"))

    async def terminal_disconnected(self, session: Session, conn: Connection) -> None:
        tid = session.who
        if self.conns.of(terminal_target(tid)):
            return  # another connection of this terminal is still here
        if await self.redis.get(keys.terminal_presence(tid)) == conn.conn_id:
            await self.redis.delete(keys.terminal_presence(tid))
        ticket = await self.store.ticket_of_terminal(tid)
        if ticket is not None and ticket.state in ("waiting", "offered"):
            # The applicant keeps the place for a grace period (a reload, a network blip).
            await self.store.mark_disconnected(tid, self.now() + self.settings.terminal_grace_s)
        self.waiting_here.pop(tid, None)

    async def join_queue(self, session: Session, item_code: str, priority: bool,
                         handling_region: str | None) -> None:
        item = self.items.get(item_code)
        if item is None:
            raise ClientError("unknown_item", "没有找到这个事项，请重新选择")
        now = self.now()
        ticket = Ticket(
            ticket_id=_new_id("tk"), terminal_id=session.who, terminal_name=session.display_name,
            village=session.village, item_code=item_code,
            handling_region=handling_region or session.region_code, priority=priority,
            enqueued_at=now, state="waiting", offer_id="", call_id="",
        )
        held = await self.store.join(ticket)
        if held != ticket.ticket_id:
            existing = await self.store.ticket(held)
            if existing is not None and existing.state == "in_call":
                raise ClientError("in_call", "您正在通话中")
            if existing is not None:
                here = LocalTerminal(held, existing.item_code, existing.enqueued_at)
                self.waiting_here[session.who] = here
                status = await self.queue_status(existing)
                if status is not None:
                    here.shown = _shown(status)
                    await self.to_terminal(session.who, status)
            return
        log.info("joined queue", extra={"ticket": ticket.ticket_id, "terminal": session.who,
                                        "item": item_code, "priority": priority})
        self.waiting_here[session.who] = LocalTerminal(ticket.ticket_id, item_code, now)
        await self.dispatch_for_ticket(ticket)
        await self.queue_changed(item_code)

    async def leave_queue(self, session: Session) -> None:
        ticket = await self.store.ticket_of_terminal(session.who)
        if ticket is None:
            return
        if ticket.state == "in_call":
            raise ClientError("in_call", "通话中不能离开队列，请挂断通话")
        await self._drop_ticket(ticket, "left")

    async def _drop_ticket(self, ticket: Ticket, reason: Literal["left", "abandoned"],
                           unless_present: str = "") -> bool:
        offer_id = await self.store.remove_ticket(
            ticket, reason, unless_present, self.now() + self.settings.terminal_grace_s)
        if offer_id is None:
            return False
        log.info("left queue", extra={"ticket": ticket.ticket_id, "reason": reason})
        self.waiting_here.pop(ticket.terminal_id, None)
        if offer_id:
            offer = await self.store.offer(offer_id)
            if offer is not None and await self.store.release(
                offer, "offers_withdrawn", False, "", self.now()
            ):
                await self.to_clerk(offer.clerk, OfferClosed(offer_id=offer_id,
                                                             reason="withdrawn"))
                await self.push_clerk_state(offer.clerk)
                await self.dispatch_for_clerk(offer.clerk)
        await self.to_terminal(ticket.terminal_id,
                               LeftQueue(ticket_id=ticket.ticket_id, reason=reason))
        await self.queue_changed(ticket.item_code)
        return True

    async def queue_status(self, ticket: Ticket) -> QueueStatus | None:
        [(position, total)] = await self.store.positions([ticket])
        if position is None:
            return None
        return QueueStatus(
            ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            state="offered" if ticket.state == "offered" else "waiting",
            position=position, waiting_total=total,
            estimated_wait_s=self.estimate(ticket.item_code, position),
            since=ticket.enqueued_at,
        )

    def estimate(self, item_code: str, position: int) -> int:
        return estimate_wait(position, self._staffed.get(item_code, 0),
                             self._handle_times.get(item_code, []),
                             self.settings.default_handle_time_s)

    # --- clerks ----------------------------------------------------------------------

    async def clerk_connected(self, session: Session, conn: Connection) -> None:
        u = session.who
        now = self.now()
        await self.store.upsert_clerk(u, session.display_name, session.skills,
                                      session.jurisdictions, session.region_code, now)
        await self.store.set_presence(keys.clerk_presence(u), conn.conn_id,
                                      self.settings.clerk_presence_ttl_s)
        clerk = await self.store.clerk(u)
        assert clerk is not None
        if clerk.status == "offline":
            await self.store.set_status(u, "not_ready", "刚登录", now)
            clerk = await self.store.clerk(u)
            assert clerk is not None
        conn.send_model(Hello(role="clerk", who=u, display_name=session.display_name,
                              node_id=self.settings.node_id))
        conn.send_model(self.clerk_state(clerk))
        if clerk.offer_id:
            offer = await self.store.offer(clerk.offer_id)
            ticket = await self.store.ticket(offer.ticket_id) if offer else None
            if offer is not None and ticket is not None:
                conn.send_model(self.offer_message(offer, ticket))
        if clerk.call_id:
            call = await self.store.call(clerk.call_id)
            if call.get("state") == "active":
                conn.send_model(await self.call_assigned(call, u, "clerk"))

    async def clerk_disconnected(self, session: Session, conn: Connection) -> None:
        if self.conns.of(clerk_target(session.who)):
            return
        if await self.store.clerk_gone(session.who, conn.conn_id):
            await self._clerk_left(session.who)

    async def _clerk_left(self, username: str) -> None:
        """A clerk went offline: its pending offer goes back to the applicant's place."""
        log.info("clerk offline", extra={"clerk": username})
        clerk = await self.store.clerk(username)
        if clerk is not None and clerk.offer_id:
            offer = await self.store.offer(clerk.offer_id)
            if offer is not None:
                await self._release_offer(offer, "offers_withdrawn", False, "", "withdrawn")

    async def set_status(self, session: Session, status: str, reason: str | None) -> None:
        u = session.who
        if status == "ready":
            await self._go_ready(u, reason or "")
            return
        clerk = await self.store.clerk(u)
        if clerk is None:
            raise ClientError("no_clerk", "请重新登录")
        if status == "not_ready" and clerk.offer_id:
            offer = await self.store.offer(clerk.offer_id)
            if offer is not None:
                await self._release_offer(offer, "offers_withdrawn", False, "", "withdrawn")
        await self.store.set_status(u, status, reason or "", self.now())
        await self.push_clerk_state(u)

    async def _go_ready(self, username: str, reason: str) -> None:
        """Ready, and the first eligible applicant reserved in the same step if any waits:
        two round trips (read the heads, then one script) before the offer goes out."""
        clerk, candidates = await self._candidates(username, only_if_free=False)
        if clerk is None:
            raise ClientError("no_clerk", "请重新登录")
        offer_id, now = _new_id("of"), self.now()
        expires = now + self.settings.offer_timeout_s
        done = await self.store.ready_first(username, reason, candidates, offer_id, now,
                                            expires)
        if done is None:
            raise ClientError("no_clerk", "请重新登录")
        clerk, got = done
        if got is not None:
            # As if set ready and then offered: ready (and idle) first, then the offer.
            await self._announce_offer(OfferRecord(offer_id, username, got.ticket_id, now,
                                                   expires), got, clerk,
                                       replace(clerk, state="idle", offer_id=""))
            return
        await self.to_clerk(username, self.clerk_state(clerk))
        if candidates and clerk.state == "idle":
            await self.dispatch_for_clerk(username)  # others took them meanwhile: look again

    def offer_message(self, offer: OfferRecord, ticket: Ticket) -> Offer:
        item = self.items.get(ticket.item_code)
        return Offer(
            offer_id=offer.offer_id, ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            item_name=item.name if item else ticket.item_code, terminal_id=ticket.terminal_id,
            terminal_name=ticket.terminal_name, village=ticket.village,
            handling_region=ticket.handling_region, priority=ticket.priority,
            waited_s=int(offer.created_at - ticket.enqueued_at), expires_at=offer.expires_at,
        )

    async def _own_offer(self, session: Session, offer_id: str) -> tuple[OfferRecord, Ticket]:
        offer = await self.store.offer(offer_id)
        if offer is None or offer.clerk != session.who:
            raise ClientError("offer_gone", "这个来电已经结束或转给了其他人")
        ticket = await self.store.ticket(offer.ticket_id)
        if ticket is None:
            raise ClientError("offer_gone", "申请人已经离开")
        return offer, ticket

    async def accept_offer(self, session: Session, offer_id: str) -> None:
        offer, ticket = await self._own_offer(session, offer_id)
        call_id = _new_id("call")
        now = self.now()
        fields = {
            "call_id": call_id, "ticket_id": ticket.ticket_id, "item_code": ticket.item_code,
            "terminal_id": ticket.terminal_id, "terminal_name": ticket.terminal_name,
            "clerk": session.who, "clerk_name": session.display_name, "state": "active",
            "started_at": repr(now), "second_clerk": "", "invited": "",
        }
        result = await self.store.accept(offer, ticket, call_id, now, fields)
        if result == -2:
            raise ClientError("offer_expired", "来电已超时")
        if result != 1:
            raise ClientError("offer_gone", "这个来电已经结束或转给了其他人")
        log.info("offer accepted", extra={"offer": offer_id, "call": call_id,
                                          "clerk": session.who, "ticket": ticket.ticket_id})
        self.waiting_here.pop(ticket.terminal_id, None)
        media = await calls.start_call(self.app, calls.CallStart(
            call_id=call_id, ticket_id=ticket.ticket_id, item_code=ticket.item_code,
            terminal_id=ticket.terminal_id, terminal_name=ticket.terminal_name,
            clerk_username=session.who, clerk_name=session.display_name))
        for who, role in ((ticket.terminal_id, "terminal"), (session.who, "clerk")):
            msg = self._call_message(fields, media.get(who))
            if role == "terminal":
                await self.to_terminal(who, msg)
            else:
                await self.to_clerk(who, OfferClosed(offer_id=offer_id, reason="accepted"), msg)
        await self.push_clerk_state(session.who)
        await self.queue_changed(ticket.item_code)

    @staticmethod
    def _call_message(call: dict[str, str], media: MediaJoin | None) -> CallAssigned:
        return CallAssigned(
            call_id=call["call_id"], ticket_id=call["ticket_id"], item_code=call["item_code"],
            terminal_id=call["terminal_id"], terminal_name=call["terminal_name"],
            clerk_username=call["clerk"], clerk_name=call["clerk_name"],
            media=media,
        )

    async def call_assigned(self, call: dict[str, str], who: str, role: str) -> CallAssigned:
        media = await calls.join_for(self.app, call["call_id"], who, role)
        return self._call_message(call, media)

    async def reject_offer(self, session: Session, offer_id: str) -> None:
        offer, _ = await self._own_offer(session, offer_id)
        await self._release_offer(offer, "offers_rejected", True, "拒绝接听", "rejected")

    async def _release_offer(self, offer: OfferRecord, counter: str, clerk_not_ready: bool,
                             reason: str, closed: Literal["timeout", "rejected", "withdrawn"]
                             ) -> None:
        if not await self.store.release(offer, counter, clerk_not_ready, reason, self.now()):
            return
        log.info("offer released", extra={"offer": offer.offer_id, "why": closed,
                                          "clerk": offer.clerk, "ticket": offer.ticket_id})
        await self.to_clerk(offer.clerk, OfferClosed(offer_id=offer.offer_id, reason=closed))
        await self.push_clerk_state(offer.clerk)
        ticket = await self.store.ticket(offer.ticket_id)
        if ticket is not None:
            # The applicant kept its place at the head; try the next eligible clerk.
            await self.dispatch_for_ticket(ticket)
            await self.queue_changed(ticket.item_code)
        if not clerk_not_ready:
            await self.dispatch_for_clerk(offer.clerk)

    async def end_call(self, call_id: str, reason: str, by: str | None = None) -> None:
        """End a call (hang-up by the clerk, or the media side reporting its end)."""
        call = await self.store.call(call_id)
        if not call:
            raise ClientError("no_call", "没有这个通话")
        if by is not None and by not in (call["clerk"], call.get("second_clerk")):
            raise ClientError("not_your_call", "这不是您的通话")
        now = self.now()
        if not await self.store.end_call(call, now, now + self.settings.wrapup_s, reason):
            return
        log.info("call ended", extra={"call": call_id, "why": reason})
        await calls.stop_call(self.app, call_id, reason)
        ended = CallEnded(call_id=call_id, reason=reason)
        await self.to_terminal(call["terminal_id"], ended)
        await self.to_clerk(call["clerk"], ended)
        if call.get("second_clerk"):
            await self.to_clerk(call["second_clerk"], ended)
        await self.push_clerk_state(call["clerk"])

    async def wrapup_done(self, session: Session) -> None:
        if await self.store.wrapup_done(session.who, self.now(), only_if_due=False):
            await self.push_clerk_state(session.who)
            await self.dispatch_for_clerk(session.who)

    async def invite_clerk(self, session: Session, call_id: str, username: str) -> None:
        call = await self.store.call(call_id)
        if call.get("state") != "active" or call.get("clerk") != session.who:
            raise ClientError("not_your_call", "只能邀请到您正在进行的通话")
        other = await self.store.clerk(username)
        if other is None or other.status == "offline" or username == session.who:
            raise ClientError("clerk_unavailable", "对方不在线")
        await self.redis.hset(keys.call(call_id), "invited", username)
        await self.to_clerk(username, CallInvite(
            call_id=call_id, from_username=session.who, from_name=session.display_name,
            item_code=call["item_code"]))

    async def accept_invite(self, session: Session, call_id: str) -> None:
        call = await self.store.call(call_id)
        if call.get("state") != "active" or call.get("invited") != session.who:
            raise ClientError("no_invite", "邀请已失效")
        await self.redis.hset(keys.call(call_id), mapping={"second_clerk": session.who,
                                                           "invited": ""})
        await self.set_status(session, "not_ready", "三方连线")
        call["second_clerk"] = session.who
        await self.to_clerk(session.who, await self.call_assigned(call, session.who,
                                                                  "second_clerk"))

    # --- dispatch --------------------------------------------------------------------

    async def _offer(self, ticket: Ticket, username: str) -> int:
        offer_id = _new_id("of")
        now = self.now()
        expires = now + self.settings.offer_timeout_s
        result = await self.store.reserve(ticket, username, offer_id, now, expires)
        if result == 1:
            await self._announce_offer(OfferRecord(offer_id, username, ticket.ticket_id, now,
                                                   expires), ticket)
        return result

    async def _announce_offer(self, offer: OfferRecord, ticket: Ticket,
                              clerk: ClerkRecord | None = None, before: ClerkRecord | None = None
                              ) -> None:
        """The offer (to this node's connections at once) and the clerk's state after it
        (`before` it too, if given), published for the other nodes in one round trip with
        the news that the applicant's queue changed."""
        if clerk is None:
            clerk = await self.store.clerk(offer.clerk)
        messages: list[BaseModel] = [self.offer_message(offer, ticket)]
        if before is not None:
            messages.insert(0, self.clerk_state(before))
        if clerk is not None:
            messages.append(self.clerk_state(clerk))
        payloads = self.deliver_here(clerk_target(offer.clerk), *messages)
        await self.publish([*payloads, self.queue_changed_event(ticket.item_code)])
        log.info("offer made", extra={"offer": offer.offer_id, "clerk": offer.clerk,
                                      "ticket": ticket.ticket_id})

    async def dispatch_for_ticket(self, ticket: Ticket) -> None:
        """Offer a newly free applicant to the eligible idle clerk the strategy picks."""
        excluded: set[str] = set()
        regions = self.items[ticket.item_code].clerk_regions if ticket.item_code in self.items \
            else []
        for _ in range(RACE_RETRIES):
            current = await self.store.ticket(ticket.ticket_id)
            if current is None or current.state != "waiting":
                return
            idle = [c.candidate() for c in await self.store.ready_clerks()
                    if c.username not in excluded and c.status == "ready" and c.state == "idle"]
            clerk = pick_clerk(current.applicant(), idle, regions,
                               self.settings.routing_strategy, self.rng)
            if clerk is None:
                return
            result = await self._offer(current, clerk.username)
            if result != -1:
                return
            excluded.add(clerk.username)

    async def dispatch_for_clerk(self, username: str) -> None:
        """Offer a newly free clerk the first eligible applicant across its items."""
        for _ in range(RACE_RETRIES):
            clerk, candidates = await self._candidates(username, only_if_free=True)
            if clerk is None or not candidates:
                return
            offer_id, now = _new_id("of"), self.now()
            expires = now + self.settings.offer_timeout_s
            got = await self.store.reserve_first(candidates, username, offer_id, now, expires)
            if isinstance(got, Ticket):
                # Reserved only if still ready and idle: the rest of the record is as read.
                held = replace(clerk, state="offered", offer_id=offer_id)
                await self._announce_offer(OfferRecord(offer_id, username, got.ticket_id, now,
                                                       expires), got, held)
                return
            if got == -1:
                return  # the clerk is no longer free

    async def _candidates(self, username: str, only_if_free: bool
                          ) -> tuple[ClerkRecord | None, list[Ticket]]:
        """The clerk and its next eligible applicants in queue order (a few, for a
        reservation), read in one round trip unless the queue heads are all ineligible.
        With `only_if_free`, a clerk not ready and idle gets no candidates."""
        regions = self._item_regions()
        starts = dict.fromkeys(sorted(self.items), 0)
        clerk: ClerkRecord | None = None
        for _ in range(MAX_PAGES):
            clerk, heads = await self.store.clerk_heads(username, starts, HEADS_SCAN,
                                                        HEADS_WANT, only_if_free)
            if clerk is None or (only_if_free and (clerk.status, clerk.state)
                                 != ("ready", "idle")):
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

    # --- background loops ------------------------------------------------------------

    async def sweep_once(self) -> None:
        now = self.now()
        for offer_id in await self.store.due_offers(now):
            offer = await self.store.offer(offer_id)
            if offer is None:
                await self.redis.zrem(keys.offers_expiry(), offer_id)
                continue
            await self._release_offer(offer, "offers_timed_out", True, "未接听", "timeout")
        for tid in await self.store.due_disconnected(now):
            ticket = await self.store.ticket_of_terminal(tid)
            if ticket is None:
                await self.store.mark_connected(tid)
                continue
            await self._drop_ticket(ticket, "abandoned", keys.terminal_presence(tid))
        for username in await self.store.due_wrapups(now):
            if await self.store.wrapup_done(username, now, only_if_due=True):
                await self.push_clerk_state(username)
                await self.dispatch_for_clerk(username)

    async def reap_dead_clerks(self) -> None:
        for c in await self.store.roster():
            if c.status != "offline" and not c.present and await self.store.clerk_gone(
                    c.username, ""):
                await self._clerk_left(c.username)

    async def rebalance(self) -> None:
        """Safety net: offer every idle ready clerk its next applicant (one node at a time)."""
        if not await self.redis.set(keys.routing_lock(), self.settings.node_id, nx=True, px=900):
            return
        for username in strs(await self.redis.zrange(keys.clerks_ready(), 0, -1)):
            await self.dispatch_for_clerk(username)

    async def refresh_figures(self) -> None:
        """Staffed clerks and recent handle times per item, for the estimated wait."""
        staffed: dict[str, int] = {}
        for c in await self.store.roster():
            if c.status != "offline":
                for skill in c.skills:
                    staffed[skill] = staffed.get(skill, 0) + 1
        self._staffed = staffed
        self._handle_times = await self.store.handle_times_of(sorted(self.items))

    async def refresh_presence(self) -> None:
        conns = self.conns.all()
        # In slices, so thousands of connections never hold the loop in one go.
        for start in range(0, len(conns), PRESENCE_SLICE):
            async with self.redis.pipeline(transaction=False) as pipe:
                for conn in conns[start:start + PRESENCE_SLICE]:
                    kind, _, who = conn.target.partition(":")
                    if kind == "clerk":
                        pipe.set(keys.clerk_presence(who), conn.conn_id,
                                 px=int(self.settings.clerk_presence_ttl_s * 1000))
                    else:
                        pipe.set(keys.terminal_presence(who), conn.conn_id,
                                 px=int(self.settings.terminal_grace_s * 1000))
                await pipe.execute()

    async def push_positions(self, items: set[str] | None) -> None:
        """Tell local waiting terminals (of `items`, or all) their place and estimated wait,
        where it changed since last told."""
        for item in sorted(items if items is not None else self.items):
            await self.push_item(item)

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
                state="offered" if state == "offered" else "waiting", position=position,
                waiting_total=len(view), estimated_wait_s=self.estimate(item_code, position),
                since=lt.since)
            shown = _shown(msg)
            if shown == lt.shown and not unchanged_too:
                continue
            lt.shown = shown
            for conn in self.conns.of(terminal_target(terminal_id)):
                conn.send_model(msg)
            told += 1
            if told % POSITIONS_CHUNK == 0:
                await asyncio.sleep(0)  # let their writers and any intent run

    def deliver(self, payload: str) -> None:
        origin, target, text = fanout.parse(payload)
        if origin == self.origin:
            return  # delivered here when sent
        if target == fanout.EVENT:
            if '"queue_changed"' in text:
                self.mark_dirty(str(json.loads(text)["item"]))
            return
        for conn in self.conns.of(target):
            conn.send(text)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.events_channel())
        try:
            async for msg in pubsub.listen():
                raise_if_cancelling()
                if msg is not None and msg["type"] == "message":
                    self.deliver(str(msg["data"]))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _next_positions(self, now: float) -> tuple[str | None, bool, float]:
        """The item whose positions to push now (a changed one not pushed within the gap,
        else the next in the periodic refresh when due) and whether it is the refresh, or
        when to look again."""
        dues = []
        for item in sorted(self._dirty_items):
            due = self._pushed_at.get(item, 0.0) + POSITION_GAP_S
            if due <= now:
                return item, False, now
            dues.append(due)
        if now >= self._refresh_at:
            # The refresh takes one item at a time, spread evenly over the period.
            codes = sorted(self.items)
            self._refresh_at = now + self.settings.position_refresh_s / max(len(codes), 1)
            if codes:
                self._refresh_turn = (self._refresh_turn + 1) % len(codes)
                return codes[self._refresh_turn], True, now
        return None, False, min([self._refresh_at, *dues])

    async def _positions_step(self) -> None:
        loop = asyncio.get_running_loop()
        item, refresh, wake = self._next_positions(loop.time())
        if item is None:
            self._dirty.clear()
            await wait_for_event(self._dirty, max(wake - loop.time(), 0.001))
            return
        if self._urgent:
            # Offers first: a bulk push waits (bounded) for clerks' intents in flight.
            await wait_for_event(self._calm, CALM_WAIT_S)
        self._dirty_items.discard(item)
        self._pushed_at[item] = loop.time()
        await self.push_item(item, unchanged_too=refresh)

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await step()
            except (RedisError, ConnectionError, OSError) as exc:
                log.warning("background step failed", extra={"step": step.__name__,
                                                             "error": repr(exc)})
            raise_if_cancelling()
            await asyncio.sleep(interval)

    async def run_background(self) -> list[asyncio.Task[None]]:
        await self.refresh_figures()
        listener = asyncio.create_task(self._listen(), name="fanout-listener")
        return [
            listener,
            asyncio.create_task(self._every(SWEEP_INTERVAL_S, self.sweep_once), name="sweep"),
            asyncio.create_task(self._every(1.0, self.reap_dead_clerks), name="reap"),
            asyncio.create_task(self._every(1.0, self.rebalance), name="rebalance"),
            asyncio.create_task(self._every(2.0, self.refresh_figures), name="figures"),
            asyncio.create_task(
                self._every(self.settings.clerk_presence_ttl_s / 3, self.refresh_presence),
                name="presence"),
            asyncio.create_task(self._every(0, self._positions_step), name="positions"),
        ]


def _shown(status: QueueStatus) -> tuple[str, int, int, int]:
    return (status.state, status.position, status.waiting_total, status.estimated_wait_s)


SERVICE = web.AppKey("service", QueueService)

"""The waiting queue, clerk records, reservations and calls in Redis: the only writer.

Every change that two signaling nodes could race on is one Lua script
(`signaling.queue_scripts`), so a ticket is never offered to two clerks and a clerk never
holds two offers. Scripts return whether they applied; a caller that loses a race simply
re-reads and decides again. Records are typed (`signaling.queue_records`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from core import keys
from core.redis_text import pairs, str_map, strs
from core.states import ClerkStatus, LeaveReason, TicketState
from signaling import queue_scripts as lua
from signaling.queue_records import (
    AcceptResult,
    CallRecord,
    ClerkRecord,
    OfferRecord,
    QueueHead,
    ReserveResult,
    RosterEntry,
    Ticket,
)
from signaling.routing import queue_score

ABANDONED_NOTE_S = 3600  # a terminal back within this hears that its ticket was abandoned


def _flat(fields: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, v]
    return out


class QueueStore:
    """Redis operations of the queue; every racing change is atomic (one Lua script)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.r = redis
        self._join = redis.register_script(lua.JOIN)
        self._reserve = redis.register_script(lua.RESERVE)
        self._reserve_first = redis.register_script(lua.RESERVE_FIRST)
        self._ready_first = redis.register_script(lua.READY_FIRST)
        self._clerk_heads = redis.register_script(lua.CLERK_HEADS)
        self._queue_view = redis.register_script(lua.QUEUE_VIEW)
        self._roster = redis.register_script(lua.ROSTER)
        self._accept = redis.register_script(lua.ACCEPT)
        self._release = redis.register_script(lua.RELEASE)
        self._set_status = redis.register_script(lua.SET_STATUS)
        self._clerk_gone = redis.register_script(lua.CLERK_GONE)
        self._end_call = redis.register_script(lua.END_CALL)
        self._wrapup_done = redis.register_script(lua.WRAPUP_DONE)
        self._remove_ticket = redis.register_script(lua.REMOVE_TICKET)
        self._terminal_gone = redis.register_script(lua.TERMINAL_GONE)
        self._absent_terminals = redis.register_script(lua.ABSENT_TERMINALS)

    # --- tickets ---------------------------------------------------------------------

    async def join(self, t: Ticket) -> str:
        """Create the ticket unless the terminal already holds one; returns the ticket id."""
        fields = t.to_fields() | {"state": TicketState.WAITING.value, "offer_id": "",
                                  "call_id": ""}
        result = await self._join(
            keys=[keys.ticket(t.ticket_id), keys.waiting(t.item_code),
                  keys.terminal_ticket(t.terminal_id), keys.waiting_items(), keys.counters(),
                  keys.ticket("")],
            args=[t.ticket_id, repr(queue_score(t.priority, t.enqueued_at)), *_flat(fields),
                  t.item_code],
        )
        return str(result)

    async def ticket(self, ticket_id: str) -> Ticket | None:
        h = str_map(await self.r.hgetall(keys.ticket(ticket_id)))
        return Ticket.from_hash(h) if h else None

    async def ticket_of_terminal(self, terminal_id: str) -> Ticket | None:
        tid = await self.r.get(keys.terminal_ticket(terminal_id))
        return await self.ticket(str(tid)) if tid else None

    async def remove_ticket(self, t: Ticket, reason: LeaveReason | str,
                            unless_present: str = "") -> str | None:
        """Drop a waiting ticket; returns its open offer id ('' if none), None if not removed.

        `reason` names the counter; an abandoned ticket leaves a note for the terminal.
        With `unless_present`, a terminal whose presence key exists keeps its ticket.
        """
        res = await self._remove_ticket(
            keys=[keys.ticket(t.ticket_id), keys.waiting(t.item_code),
                  keys.terminal_ticket(t.terminal_id), keys.counters(),
                  keys.disconnected_terminals(), keys.terminal_abandoned(t.terminal_id)],
            args=[t.ticket_id, str(reason), t.terminal_id, unless_present,
                  ABANDONED_NOTE_S],
        )
        return None if res is None else str(res[0])

    async def take_abandoned_note(self, terminal_id: str) -> str | None:
        """The id of a ticket abandoned while the terminal was away (then forgotten)."""
        got = await self.r.getdel(keys.terminal_abandoned(terminal_id))
        return None if got is None else str(got)

    async def absent_terminals(self, item_codes: Sequence[str]
                               ) -> list[tuple[str, float | None]]:
        """(terminal id, grace deadline or None) of waiting tickets whose terminal is not
        connected anywhere, over the given queues, in one round trip."""
        flat = strs(await self._absent_terminals(
            keys=[keys.disconnected_terminals(), *(keys.waiting(c) for c in item_codes)],
            args=[keys.ticket(""), keys.terminal_presence("")]))
        return [(flat[i], float(flat[i + 1]) if flat[i + 1] else None)
                for i in range(0, len(flat), 2)]

    async def queue_view(self, item_code: str) -> list[tuple[str, str]]:
        """(ticket id, state) of one item queue in order, in one round trip."""
        flat = strs(await self._queue_view(keys=[keys.waiting(item_code)],
                                           args=[keys.ticket("")]))
        return list(zip(flat[0::2], flat[1::2], strict=True))

    async def positions(self, tickets: Sequence[Ticket]) -> list[tuple[int | None, int]]:
        """(1-based position or None, queue length) per ticket."""
        async with self.r.pipeline(transaction=False) as pipe:
            for t in tickets:
                pipe.zrank(keys.waiting(t.item_code), t.ticket_id)
                pipe.zcard(keys.waiting(t.item_code))
            res = await pipe.execute()
        return [
            (None if res[i] is None else int(res[i]) + 1, int(res[i + 1]))
            for i in range(0, len(res), 2)
        ]

    # --- clerks ----------------------------------------------------------------------

    async def upsert_clerk(self, username: str, display_name: str, skills: Sequence[str],
                           jurisdictions: Sequence[str], region_code: str, now: float) -> None:
        """Refresh the clerk's profile; a new record starts not ready and idle."""
        k = keys.clerk(username)
        await self.r.hset(k, mapping={
            "username": username, "display_name": display_name,
            "skills": json.dumps(sorted(skills)), "jurisdictions": json.dumps(list(jurisdictions)),
            "region_code": region_code,
        })
        await self.r.hsetnx(k, "state", "idle")
        await self.r.hsetnx(k, "idle_since", repr(now))
        await self.r.sadd(keys.clerks_all(), username)

    async def clerk(self, username: str) -> ClerkRecord | None:
        h = str_map(await self.r.hgetall(keys.clerk(username)))
        return ClerkRecord.from_hash(h) if h else None

    async def clerks(self, usernames: Sequence[str]) -> list[ClerkRecord]:
        if not usernames:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for u in usernames:
                pipe.hgetall(keys.clerk(u))
            rows = await pipe.execute()
        return [ClerkRecord.from_hash(str_map(h)) for h in rows if h]

    async def clerk_heads(self, username: str, starts: Mapping[str, int], scan: int,
                          want: int, only_if_free: bool
                          ) -> tuple[ClerkRecord | None, list[QueueHead]]:
        """The clerk and, per item of its skills among `starts` (item → queue index to read
        from), up to `want` waiting tickets among `scan` entries; one round trip."""
        flat: list[Any] = []
        for item, start in starts.items():
            flat += [item, start]
        reply = await self._clerk_heads(
            keys=[keys.clerk(username), *(keys.waiting(i) for i in starts)],
            args=[keys.ticket(""), scan, want, "1" if only_if_free else "0", *flat])
        h = pairs(reply[0])
        heads = [QueueHead(str(row[0]), int(row[1]), bool(int(row[2])),
                           [Ticket.from_hash(pairs(t)) for t in row[3:]])
                 for row in reply[1:]]
        return (ClerkRecord.from_hash(h) if h else None), heads

    async def roster(self) -> list[RosterEntry]:
        """Every clerk with a record: status, skills and whether its presence is alive."""
        rows = await self._roster(keys=[keys.clerks_all()],
                                  args=[keys.clerk(""), keys.clerk_presence("")])
        return [RosterEntry(str(u), ClerkStatus(str(st)), frozenset(json.loads(str(sk))),
                            bool(alive)) for u, st, sk, alive in rows]

    async def ready_clerks(self) -> list[ClerkRecord]:
        return await self.clerks(await self.ready_usernames())

    async def ready_usernames(self) -> list[str]:
        return strs(await self.r.zrange(keys.clerks_ready(), 0, -1))

    async def all_clerks(self) -> list[ClerkRecord]:
        return await self.clerks(sorted(strs(await self.r.smembers(keys.clerks_all()))))

    async def set_status(self, username: str, status: ClerkStatus | str, reason: str,
                         now: float) -> bool:
        return bool(await self._set_status(
            keys=[keys.clerk(username), keys.clerks_ready()],
            args=[str(status), reason, repr(now)]))

    async def clerk_gone(self, username: str, conn_id: str) -> bool:
        """Mark the clerk offline if `conn_id` is still its connection ('' = presence expired)."""
        return bool(await self._clerk_gone(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.clerk_presence(username)],
            args=[conn_id]))

    # --- presence --------------------------------------------------------------------

    async def set_presence(self, presence_key: str, conn_id: str, ttl_s: float) -> None:
        await self.r.set(presence_key, conn_id, px=int(ttl_s * 1000))

    async def refresh_presences(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """(presence key, connection id, ttl) for many connections, in one round trip."""
        async with self.r.pipeline(transaction=False) as pipe:
            for key, conn_id, ttl_s in entries:
                pipe.set(key, conn_id, px=int(ttl_s * 1000))
            await pipe.execute()

    async def terminal_gone(self, terminal_id: str, conn_id: str, deadline: float) -> bool:
        """This connection of the terminal closed; True if its grace period started (no
        newer connection holds its presence and it has a waiting ticket)."""
        return bool(await self._terminal_gone(
            keys=[keys.terminal_presence(terminal_id), keys.terminal_ticket(terminal_id),
                  keys.disconnected_terminals()],
            args=[conn_id, terminal_id, repr(deadline), keys.ticket("")]))

    # --- offers ----------------------------------------------------------------------

    async def reserve(self, ticket: Ticket, username: str, offer_id: str, now: float,
                      expires_at: float) -> ReserveResult:
        return ReserveResult(int(await self._reserve(
            keys=[keys.ticket(ticket.ticket_id), keys.clerk(username), keys.clerks_ready(),
                  keys.offer(offer_id), keys.offers_expiry(), keys.counters()],
            args=[offer_id, username, ticket.ticket_id, repr(now), repr(expires_at),
                  keys.terminal_presence("")])))

    async def reserve_first(self, candidates: Sequence[Ticket], username: str, offer_id: str,
                            now: float, expires_at: float
                            ) -> Ticket | ReserveResult:
        """The candidate reserved for the clerk; TICKET_TAKEN if all were taken, CLERK_BUSY
        if the clerk is no longer free."""
        result = int(await self._reserve_first(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.offer(offer_id),
                  keys.offers_expiry(), keys.counters(),
                  *(keys.ticket(t.ticket_id) for t in candidates)],
            args=[offer_id, username, repr(now), repr(expires_at), keys.terminal_presence(""),
                  *(t.ticket_id for t in candidates)]))
        if result == ReserveResult.CLERK_BUSY:
            return ReserveResult.CLERK_BUSY
        return candidates[result - 1] if result > 0 else ReserveResult.TICKET_TAKEN

    async def ready_first(self, username: str, reason: str, candidates: Sequence[Ticket],
                          offer_id: str, now: float, expires_at: float
                          ) -> tuple[ClerkRecord, Ticket | None] | None:
        """Set the clerk ready; if idle, reserve the first still-waiting candidate.

        Returns the clerk as it is now and the ticket reserved (None if none was), or None
        when the clerk has no record.
        """
        reply = await self._ready_first(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.offer(offer_id),
                  keys.offers_expiry(), keys.counters(),
                  *(keys.ticket(t.ticket_id) for t in candidates)],
            args=[offer_id, username, repr(now), repr(expires_at), reason,
                  keys.terminal_presence(""), *(t.ticket_id for t in candidates)])
        if int(reply[0]) == 0:
            return None
        got = int(reply[1])
        return (ClerkRecord.from_hash(pairs(reply[2])),
                candidates[got - 1] if got > 0 else None)

    async def offer(self, offer_id: str) -> OfferRecord | None:
        h = str_map(await self.r.hgetall(keys.offer(offer_id)))
        if not h:
            return None
        return OfferRecord(h["offer_id"], h["clerk"], h["ticket_id"], float(h["created_at"]),
                           float(h["expires_at"]))

    async def accept(self, offer: OfferRecord, ticket: Ticket, call: CallRecord,
                     now: float) -> AcceptResult:
        return AcceptResult(int(await self._accept(
            keys=[keys.offer(offer.offer_id), keys.offers_expiry(), keys.ticket(ticket.ticket_id),
                  keys.clerk(offer.clerk), keys.waiting(ticket.item_code),
                  keys.terminal_ticket(ticket.terminal_id), keys.call(call.call_id),
                  keys.counters()],
            args=[offer.offer_id, offer.clerk, ticket.ticket_id, call.call_id, repr(now),
                  *_flat(call.to_fields())])))

    async def release(self, offer: OfferRecord, counter: str, clerk_not_ready: bool,
                      reason: str, now: float) -> bool:
        return bool(await self._release(
            keys=[keys.offer(offer.offer_id), keys.offers_expiry(), keys.ticket(offer.ticket_id),
                  keys.clerk(offer.clerk), keys.clerks_ready(), keys.counters()],
            args=[offer.offer_id, counter, "1" if clerk_not_ready else "0", reason, repr(now)]))

    async def due_offers(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(keys.offers_expiry(), "-inf", now, 0, limit))

    async def forget_offer(self, offer_id: str) -> None:
        """An expiry entry whose offer is already gone."""
        await self.r.zrem(keys.offers_expiry(), offer_id)

    # --- calls -----------------------------------------------------------------------

    async def call(self, call_id: str) -> CallRecord | None:
        h = str_map(await self.r.hgetall(keys.call(call_id)))
        return CallRecord.from_hash(h) if h.get("call_id") else None

    async def end_call(self, call: CallRecord, now: float, wrapup_until: float,
                       reason: str) -> bool:
        return bool(await self._end_call(
            keys=[keys.clerk(call.clerk), keys.wrapups(), keys.call(call.call_id),
                  keys.ticket(call.ticket_id), keys.terminal_ticket(call.terminal_id),
                  keys.handle_times(call.item_code), keys.counters()],
            args=[call.call_id, repr(now), repr(wrapup_until), reason]))

    async def invite(self, call_id: str, username: str) -> None:
        await self.r.hset(keys.call(call_id), "invited", username)

    async def join_second_clerk(self, call_id: str, username: str) -> None:
        await self.r.hset(keys.call(call_id), mapping={"second_clerk": username, "invited": ""})

    async def wrapup_done(self, username: str, now: float, only_if_due: bool) -> bool:
        return bool(await self._wrapup_done(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.wrapups()],
            args=[repr(now), "1" if only_if_due else "0"]))

    async def due_wrapups(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(keys.wrapups(), "-inf", now, 0, limit))

    async def handle_times_of(self, item_codes: Sequence[str]) -> dict[str, list[float]]:
        """Recent handle times of several items in one round trip."""
        async with self.r.pipeline(transaction=False) as pipe:
            for code in item_codes:
                pipe.lrange(keys.handle_times(code), 0, -1)
            rows = await pipe.execute()
        return {code: [float(x) for x in row] for code, row in zip(item_codes, rows, strict=True)}

    # --- terminals -------------------------------------------------------------------

    async def mark_disconnected(self, terminal_id: str, deadline: float) -> None:
        """Start the terminal's grace period (a deadline already set is kept)."""
        await self.r.zadd(keys.disconnected_terminals(), {terminal_id: deadline}, nx=True)

    async def mark_connected(self, terminal_id: str) -> None:
        await self.r.zrem(keys.disconnected_terminals(), terminal_id)

    async def due_disconnected(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(
            keys.disconnected_terminals(), "-inf", now, 0, limit))

    # --- node coordination and figures -----------------------------------------------

    async def take_routing_lock(self, node_id: str, ttl_ms: int) -> bool:
        """A short lock so one node at a time runs the periodic safety net."""
        return bool(await self.r.set(keys.routing_lock(), node_id, nx=True, px=ttl_ms))

    async def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in str_map(await self.r.hgetall(keys.counters())).items()}

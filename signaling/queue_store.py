"""The waiting queue, clerk records and reservations in Redis.

Every change that two signaling nodes could race on is one Lua script, so a ticket is
never offered to two clerks and a clerk never holds two offers. Scripts return whether
they applied; a caller that loses a race simply re-reads and decides again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core import keys
from signaling.routing import ClerkCandidate, WaitingApplicant, queue_score

HANDLE_TIMES_KEPT = 50

_JOIN = """
local existing = redis.call('GET', KEYS[3])
if existing and redis.call('EXISTS', KEYS[6] .. existing) == 1 then return existing end
redis.call('HSET', KEYS[1], unpack(ARGV, 3, #ARGV - 1))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[#ARGV])
redis.call('HINCRBY', KEYS[5], 'joined', 1)
return ARGV[1]
"""

_RESERVE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'waiting' then return 0 end
local st = redis.call('HMGET', KEYS[2], 'status', 'state')
if st[1] ~= 'ready' or st[2] ~= 'idle' then return -1 end
redis.call('HSET', KEYS[1], 'state', 'offered', 'offer_id', ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'offered', 'offer_id', ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], 'offer_id', ARGV[1], 'clerk', ARGV[2], 'ticket_id', ARGV[3],
           'created_at', ARGV[4], 'expires_at', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('HINCRBY', KEYS[6], 'offers_made', 1)
return 1
"""

# Lua shared by the two scripts below: reserve for clerk KEYS[1] the first ticket still
# waiting among KEYS[6..] (ticket ids from ARGV[first_tid]), setting `got` to its 1-based
# index or leaving it 0. KEYS 2-5 and ARGV 1-4 are as both scripts name them.
_TAKE_FIRST_WAITING = """
for i = 6, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') == 'waiting' then
    local tid = ARGV[first_tid + i - 6]
    redis.call('HSET', KEYS[i], 'state', 'offered', 'offer_id', ARGV[1])
    redis.call('HSET', KEYS[1], 'state', 'offered', 'offer_id', ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    redis.call('HSET', KEYS[3], 'offer_id', ARGV[1], 'clerk', ARGV[2], 'ticket_id', tid,
               'created_at', ARGV[3], 'expires_at', ARGV[4])
    redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
    redis.call('HINCRBY', KEYS[5], 'offers_made', 1)
    got = i - 5
    break
  end
end
"""

# The first still-waiting ticket of a clerk's candidates, reserved in one step: clerks
# freeing up together then take different applicants instead of racing for the head.
# KEYS: clerk, clerks_ready, offer, offers_expiry, counters, ticket_1..ticket_n
# ARGV: offer_id, username, now, expires_at, ticket_id_1..ticket_id_n
_RESERVE_FIRST = """
local st = redis.call('HMGET', KEYS[1], 'status', 'state')
if st[1] ~= 'ready' or st[2] ~= 'idle' then return -1 end
local first_tid, got = 5, 0
""" + _TAKE_FIRST_WAITING + """
return got
"""

# A clerk goes ready and, if idle, takes the first still-waiting of its candidates: one
# round trip for the routing's hottest intent, as atomic as set-status then reserve-first.
# KEYS: clerk, clerks_ready, offer, offers_expiry, counters, ticket_1..ticket_n
# ARGV: offer_id, username, now, expires_at, reason, ticket_id_1..ticket_id_n
# Returns {0} without a clerk record, else {1, candidate index or 0, clerk hash (flat)}.
_READY_FIRST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local cur = redis.call('HMGET', KEYS[1], 'status', 'state')
redis.call('HSET', KEYS[1], 'status', 'ready', 'reason', ARGV[5])
if cur[1] ~= 'ready' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[3]) end
local first_tid, got = 6, 0
if cur[2] == 'idle' then
""" + _TAKE_FIRST_WAITING + """
  if got == 0 then
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'idle_since'), ARGV[2])
  end
end
return {1, got, redis.call('HGETALL', KEYS[1])}
"""

# Read-only: a clerk's record and, per item queue it is skilled for, up to `want` tickets
# still waiting among at most `scan` entries from that queue's start (offered applicants
# keep their place at the head). With only_if_free=1 a clerk not ready and idle gets no
# heads. KEYS: clerk, waiting(item_1)..waiting(item_n) ; ARGV: ticket key prefix, scan,
# want, only_if_free, item_1, start_1, .., item_n, start_n.
# Returns {clerk hash, {item, next start, more (0/1), ticket hash...}...}.
_CLERK_HEADS = """
local h = redis.call('HGETALL', KEYS[1])
local out = {h}
local c = {}
for i = 1, #h, 2 do c[h[i]] = h[i + 1] end
if ARGV[4] == '1' and (c.status ~= 'ready' or c.state ~= 'idle') then return out end
local skills = {}
for _, s in ipairs(cjson.decode(c.skills or '[]')) do skills[s] = true end
local scan, want = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 2, #KEYS do
  local item, start = ARGV[3 + 2 * (i - 1)], tonumber(ARGV[4 + 2 * (i - 1)])
  if skills[item] then
    local ids = redis.call('ZRANGE', KEYS[i], start, start + scan - 1)
    local row = {item, start + #ids, #ids == scan and 1 or 0}
    for n, tid in ipairs(ids) do
      if redis.call('HGET', ARGV[1] .. tid, 'state') == 'waiting' then
        row[#row + 1] = redis.call('HGETALL', ARGV[1] .. tid)
        if #row - 3 == want then
          row[2] = start + n
          row[3] = 1
          break
        end
      end
    end
    out[#out + 1] = row
  end
end
return out
"""

# Read-only: one item queue in order with each ticket's state, for position updates.
# KEYS: waiting(item) ; ARGV: ticket key prefix. Returns {ticket_id, state, ...}.
_QUEUE_VIEW = """
local out = {}
for _, tid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = tid
  out[#out + 1] = redis.call('HGET', ARGV[1] .. tid, 'state') or ''
end
return out
"""

# Read-only: every clerk's name, status, skills and whether its presence key is alive.
# KEYS: clerks_all ; ARGV: clerk key prefix, clerk presence key prefix.
_ROSTER = """
local out = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local c = redis.call('HMGET', ARGV[1] .. u, 'status', 'skills')
  if c[1] or c[2] then
    out[#out + 1] = {u, c[1] or 'offline', c[2] or '[]',
                     redis.call('EXISTS', ARGV[2] .. u)}
  end
end
return out
"""

# KEYS: offer, offers_expiry, ticket, clerk, waiting(item), terminal_ticket, call, counters
_ACCEPT = """
local o = redis.call('HMGET', KEYS[1], 'clerk', 'ticket_id', 'expires_at')
if not o[1] or o[1] ~= ARGV[2] or o[2] ~= ARGV[3] then return 0 end
if tonumber(ARGV[5]) > tonumber(o[3]) then return -2 end
-- The applicant may have left (ticket gone) before its offer was withdrawn.
if redis.call('HGET', KEYS[3], 'offer_id') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('HSET', KEYS[3], 'state', 'in_call', 'offer_id', '', 'call_id', ARGV[4])
redis.call('HSET', KEYS[4], 'state', 'in_call', 'offer_id', '', 'call_id', ARGV[4])
redis.call('HSET', KEYS[7], unpack(ARGV, 6))
redis.call('HINCRBY', KEYS[8], 'offers_accepted', 1)
return 1
"""

# KEYS: offer, offers_expiry, ticket, clerk, clerks_ready, counters
# ARGV: offer_id, counter, clerk_to_not_ready(0/1), reason, now
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'offer_id') == ARGV[1] then
  redis.call('HSET', KEYS[3], 'state', 'waiting', 'offer_id', '')
end
if redis.call('HGET', KEYS[4], 'offer_id') == ARGV[1] then
  redis.call('HSET', KEYS[4], 'state', 'idle', 'offer_id', '')
  local username = redis.call('HGET', KEYS[4], 'username')
  if ARGV[3] == '1' then
    redis.call('HSET', KEYS[4], 'status', 'not_ready', 'reason', ARGV[4])
    redis.call('ZREM', KEYS[5], username)
  elseif redis.call('HGET', KEYS[4], 'status') == 'ready' then
    redis.call('ZADD', KEYS[5], redis.call('HGET', KEYS[4], 'idle_since') or ARGV[5], username)
  end
end
redis.call('HINCRBY', KEYS[6], ARGV[2], 1)
return 1
"""

# KEYS: clerk, clerks_ready ; ARGV: status, reason, now
_SET_STATUS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'status', 'state', 'username')
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2])
if ARGV[1] == 'ready' then
  if cur[1] ~= 'ready' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[3]) end
  if cur[2] == 'idle' then
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[1], 'idle_since'), cur[3])
  end
else
  redis.call('ZREM', KEYS[2], cur[3])
end
return 1
"""

# KEYS: clerk, clerks_ready, presence ; ARGV: conn_id (or '' to require absence)
_CLERK_GONE = """
local p = redis.call('GET', KEYS[3])
if ARGV[1] == '' then
  if p then return 0 end
elseif p ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[3])
local username = redis.call('HGET', KEYS[1], 'username')
if not username then return 0 end
redis.call('HSET', KEYS[1], 'status', 'offline', 'reason', '')
redis.call('ZREM', KEYS[2], username)
return 1
"""

# KEYS: clerk, wrapups, call, ticket, terminal_ticket, handle_times, counters
# ARGV: call_id, now, wrapup_until, reason
_END_CALL = f"""
if redis.call('HGET', KEYS[3], 'state') ~= 'active' then return 0 end
local started = tonumber(redis.call('HGET', KEYS[3], 'started_at'))
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[2], 'end_reason', ARGV[4])
redis.call('EXPIRE', KEYS[3], 86400)
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'wrap_up', 'call_id', '', 'wrapup_until', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], redis.call('HGET', KEYS[1], 'username'))
end
if redis.call('HGET', KEYS[4], 'call_id') == ARGV[1] then
  redis.call('DEL', KEYS[4])
  redis.call('DEL', KEYS[5])
end
redis.call('LPUSH', KEYS[6], tostring(tonumber(ARGV[2]) - started))
redis.call('LTRIM', KEYS[6], 0, {HANDLE_TIMES_KEPT - 1})
redis.call('HINCRBY', KEYS[7], 'calls_ended', 1)
return 1
"""

# KEYS: clerk, clerks_ready, wrapups ; ARGV: now, only_if_due(0/1)
_WRAPUP_DONE = """
local c = redis.call('HMGET', KEYS[1], 'state', 'wrapup_until', 'username', 'status')
if c[1] ~= 'wrap_up' then return 0 end
if ARGV[2] == '1' and tonumber(c[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'idle', 'wrapup_until', '', 'idle_since', ARGV[1])
redis.call('ZREM', KEYS[3], c[3])
if c[4] == 'ready' then redis.call('ZADD', KEYS[2], ARGV[1], c[3]) end
return 1
"""

# KEYS: ticket, waiting(item), terminal_ticket, counters, disconnected ; ARGV: ticket_id,
# counter, terminal_id, only_if_absent_presence_key, recheck_at
_REMOVE_TICKET = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'in_call' then return false end
if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[4]) == 1 then
  -- Still (or again) connected somewhere: look again after another grace period.
  redis.call('ZADD', KEYS[5], 'XX', ARGV[5], ARGV[3])
  return false
end
local offer = redis.call('HGET', KEYS[1], 'offer_id') or ''
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return {offer}
"""


def strs(values: Iterable[Any]) -> list[str]:
    """Redis replies as str (the client decodes responses; the typing does not know it)."""
    return [str(v) for v in values]


def str_map(h: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in h.items()}


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A hash returned flat by a script ([field, value, ...]) as a dict."""
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    terminal_id: str
    terminal_name: str
    village: str
    item_code: str
    handling_region: str
    priority: bool
    enqueued_at: float
    state: str  # waiting | offered | in_call
    offer_id: str
    call_id: str

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Ticket:
        return cls(
            ticket_id=h["ticket_id"], terminal_id=h["terminal_id"],
            terminal_name=h.get("terminal_name", ""), village=h.get("village", ""),
            item_code=h["item_code"], handling_region=h["handling_region"],
            priority=h.get("priority") == "1", enqueued_at=float(h["enqueued_at"]),
            state=h["state"], offer_id=h.get("offer_id", ""), call_id=h.get("call_id", ""),
        )

    def applicant(self) -> WaitingApplicant:
        return WaitingApplicant(self.ticket_id, self.item_code, self.handling_region,
                                self.priority, self.enqueued_at, self.state != "waiting")


@dataclass(frozen=True)
class ClerkRecord:
    username: str
    display_name: str
    status: str  # offline | ready | not_ready
    reason: str
    state: str  # idle | offered | in_call | wrap_up
    skills: frozenset[str]
    jurisdictions: tuple[str, ...]
    region_code: str
    idle_since: float
    offer_id: str
    call_id: str
    wrapup_until: float | None

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> ClerkRecord:
        return cls(
            username=h["username"], display_name=h.get("display_name", h["username"]),
            status=h.get("status", "offline"), reason=h.get("reason", ""),
            state=h.get("state", "idle"), skills=frozenset(json.loads(h.get("skills", "[]"))),
            jurisdictions=tuple(json.loads(h.get("jurisdictions", "[]"))),
            region_code=h.get("region_code", ""), idle_since=float(h.get("idle_since") or 0),
            offer_id=h.get("offer_id", ""), call_id=h.get("call_id", ""),
            wrapup_until=float(h["wrapup_until"]) if h.get("wrapup_until") else None,
        )

    def candidate(self) -> ClerkCandidate:
        return ClerkCandidate(self.username, self.skills, self.jurisdictions, self.region_code,
                              self.idle_since)


@dataclass(frozen=True)
class QueueHead:
    """Part of one item queue: the tickets still waiting in it, where to read on from and
    whether anything is left there."""

    item_code: str
    next_start: int
    more: bool
    waiting: list[Ticket]


@dataclass(frozen=True)
class RosterEntry:
    username: str
    status: str
    skills: frozenset[str]
    present: bool


@dataclass(frozen=True)
class OfferRecord:
    offer_id: str
    clerk: str
    ticket_id: str
    created_at: float
    expires_at: float


class QueueStore:
    """Redis operations of the queue; every racing change is atomic (one Lua script)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.r = redis
        self._join = redis.register_script(_JOIN)
        self._reserve = redis.register_script(_RESERVE)
        self._reserve_first = redis.register_script(_RESERVE_FIRST)
        self._ready_first = redis.register_script(_READY_FIRST)
        self._clerk_heads = redis.register_script(_CLERK_HEADS)
        self._queue_view = redis.register_script(_QUEUE_VIEW)
        self._roster = redis.register_script(_ROSTER)
        self._accept = redis.register_script(_ACCEPT)
        self._release = redis.register_script(_RELEASE)
        self._set_status = redis.register_script(_SET_STATUS)
        self._clerk_gone = redis.register_script(_CLERK_GONE)
        self._end_call = redis.register_script(_END_CALL)
        self._wrapup_done = redis.register_script(_WRAPUP_DONE)
        self._remove_ticket = redis.register_script(_REMOVE_TICKET)

    # --- tickets ---------------------------------------------------------------------

    async def join(self, t: Ticket) -> str:
        """Create the ticket unless the terminal already holds one; returns the ticket id."""
        fields: list[Any] = []
        for k, v in {
            "ticket_id": t.ticket_id, "terminal_id": t.terminal_id,
            "terminal_name": t.terminal_name, "village": t.village, "item_code": t.item_code,
            "handling_region": t.handling_region, "priority": "1" if t.priority else "0",
            "enqueued_at": repr(t.enqueued_at), "state": "waiting", "offer_id": "",
            "call_id": "",
        }.items():
            fields += [k, v]
        score = queue_score(t.priority, t.enqueued_at)
        result = await self._join(
            keys=[keys.ticket(t.ticket_id), keys.waiting(t.item_code),
                  keys.terminal_ticket(t.terminal_id), keys.waiting_items(), keys.counters(),
                  keys.ticket("")],
            args=[t.ticket_id, repr(score), *fields, t.item_code],
        )
        return str(result)

    async def ticket(self, ticket_id: str) -> Ticket | None:
        h = str_map(await self.r.hgetall(keys.ticket(ticket_id)))
        return Ticket.from_hash(h) if h else None

    async def tickets(self, ticket_ids: Sequence[str]) -> list[Ticket | None]:
        """Several tickets in one round trip (None where gone)."""
        async with self.r.pipeline(transaction=False) as pipe:
            for tid in ticket_ids:
                pipe.hgetall(keys.ticket(tid))
            rows = await pipe.execute()
        return [Ticket.from_hash(str_map(h)) if h else None for h in rows]

    async def ticket_of_terminal(self, terminal_id: str) -> Ticket | None:
        tid = await self.r.get(keys.terminal_ticket(terminal_id))
        return await self.ticket(str(tid)) if tid else None

    async def remove_ticket(self, t: Ticket, counter: str, unless_present: str = "",
                            recheck_at: float = 0.0) -> str | None:
        """Drop a waiting ticket; returns its open offer id ('' if none), None if not removed.

        With `unless_present`, a terminal whose presence key exists keeps its ticket and is
        looked at again at `recheck_at`.
        """
        res = await self._remove_ticket(
            keys=[keys.ticket(t.ticket_id), keys.waiting(t.item_code),
                  keys.terminal_ticket(t.terminal_id), keys.counters(),
                  keys.disconnected_terminals()],
            args=[t.ticket_id, counter, t.terminal_id, unless_present, repr(recheck_at)],
        )
        return None if res is None else str(res[0])

    async def queue_heads(self, item_code: str, start: int, count: int) -> list[Ticket]:
        ids = strs(await self.r.zrange(keys.waiting(item_code), start, start + count - 1))
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for tid in ids:
                pipe.hgetall(keys.ticket(tid))
            rows = await pipe.execute()
        return [Ticket.from_hash(str_map(h)) for h in rows if h]

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
        h = _pairs(reply[0])
        heads = [QueueHead(str(row[0]), int(row[1]), bool(int(row[2])),
                           [Ticket.from_hash(_pairs(t)) for t in row[3:]])
                 for row in reply[1:]]
        return (ClerkRecord.from_hash(h) if h else None), heads

    async def roster(self) -> list[RosterEntry]:
        """Every clerk with a record: status, skills and whether its presence is alive."""
        rows = await self._roster(keys=[keys.clerks_all()],
                                  args=[keys.clerk(""), keys.clerk_presence("")])
        return [RosterEntry(str(u), str(st), frozenset(json.loads(str(sk))), bool(alive))
                for u, st, sk, alive in rows]

    async def ready_clerks(self) -> list[ClerkRecord]:
        return await self.clerks(strs(await self.r.zrange(keys.clerks_ready(), 0, -1)))

    async def all_clerks(self) -> list[ClerkRecord]:
        return await self.clerks(sorted(strs(await self.r.smembers(keys.clerks_all()))))

    async def set_status(self, username: str, status: str, reason: str, now: float) -> bool:
        return bool(await self._set_status(
            keys=[keys.clerk(username), keys.clerks_ready()], args=[status, reason, repr(now)]))

    async def set_presence(self, presence_key: str, conn_id: str, ttl_s: float) -> None:
        await self.r.set(presence_key, conn_id, px=int(ttl_s * 1000))

    async def clerk_gone(self, username: str, conn_id: str) -> bool:
        """Mark the clerk offline if `conn_id` is still its connection ('' = presence expired)."""
        return bool(await self._clerk_gone(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.clerk_presence(username)],
            args=[conn_id]))

    # --- offers ----------------------------------------------------------------------

    async def reserve(self, ticket: Ticket, username: str, offer_id: str, now: float,
                      expires_at: float) -> int:
        """1 reserved; 0 the ticket is no longer free; -1 the clerk is no longer free."""
        return int(await self._reserve(
            keys=[keys.ticket(ticket.ticket_id), keys.clerk(username), keys.clerks_ready(),
                  keys.offer(offer_id), keys.offers_expiry(), keys.counters()],
            args=[offer_id, username, ticket.ticket_id, repr(now), repr(expires_at)]))

    async def reserve_first(self, candidates: Sequence[Ticket], username: str, offer_id: str,
                            now: float, expires_at: float) -> Ticket | int | None:
        """The candidate reserved for the clerk; None if all were taken; -1 clerk not free."""
        result = int(await self._reserve_first(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.offer(offer_id),
                  keys.offers_expiry(), keys.counters(),
                  *(keys.ticket(t.ticket_id) for t in candidates)],
            args=[offer_id, username, repr(now), repr(expires_at),
                  *(t.ticket_id for t in candidates)]))
        if result == -1:
            return -1
        return candidates[result - 1] if result > 0 else None

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
                  *(t.ticket_id for t in candidates)])
        if int(reply[0]) == 0:
            return None
        got = int(reply[1])
        return (ClerkRecord.from_hash(_pairs(reply[2])),
                candidates[got - 1] if got > 0 else None)

    async def offer(self, offer_id: str) -> OfferRecord | None:
        h = str_map(await self.r.hgetall(keys.offer(offer_id)))
        if not h:
            return None
        return OfferRecord(h["offer_id"], h["clerk"], h["ticket_id"], float(h["created_at"]),
                           float(h["expires_at"]))

    async def accept(self, offer: OfferRecord, ticket: Ticket, call_id: str, now: float,
                     call_fields: dict[str, str]) -> int:
        """1 accepted; 0 not this clerk's open offer; -2 expired."""
        flat: list[str] = []
        for k, v in call_fields.items():
            flat += [k, v]
        return int(await self._accept(
            keys=[keys.offer(offer.offer_id), keys.offers_expiry(), keys.ticket(ticket.ticket_id),
                  keys.clerk(offer.clerk), keys.waiting(ticket.item_code),
                  keys.terminal_ticket(ticket.terminal_id), keys.call(call_id), keys.counters()],
            args=[offer.offer_id, offer.clerk, ticket.ticket_id, call_id, repr(now), *flat]))

    async def release(self, offer: OfferRecord, counter: str, clerk_not_ready: bool,
                      reason: str, now: float) -> bool:
        return bool(await self._release(
            keys=[keys.offer(offer.offer_id), keys.offers_expiry(), keys.ticket(offer.ticket_id),
                  keys.clerk(offer.clerk), keys.clerks_ready(), keys.counters()],
            args=[offer.offer_id, counter, "1" if clerk_not_ready else "0", reason, repr(now)]))

    async def due_offers(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(keys.offers_expiry(), "-inf", now, 0, limit))

    # --- calls -----------------------------------------------------------------------

    async def call(self, call_id: str) -> dict[str, str]:
        return str_map(await self.r.hgetall(keys.call(call_id)))

    async def end_call(self, call: dict[str, str], now: float, wrapup_until: float,
                       reason: str) -> bool:
        return bool(await self._end_call(
            keys=[keys.clerk(call["clerk"]), keys.wrapups(), keys.call(call["call_id"]),
                  keys.ticket(call["ticket_id"]), keys.terminal_ticket(call["terminal_id"]),
                  keys.handle_times(call["item_code"]), keys.counters()],
            args=[call["call_id"], repr(now), repr(wrapup_until), reason]))

    async def wrapup_done(self, username: str, now: float, only_if_due: bool) -> bool:
        return bool(await self._wrapup_done(
            keys=[keys.clerk(username), keys.clerks_ready(), keys.wrapups()],
            args=[repr(now), "1" if only_if_due else "0"]))

    async def due_wrapups(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(keys.wrapups(), "-inf", now, 0, limit))

    async def handle_times(self, item_code: str) -> list[float]:
        return [float(x) for x in await self.r.lrange(keys.handle_times(item_code), 0, -1)]

    async def handle_times_of(self, item_codes: Sequence[str]) -> dict[str, list[float]]:
        """Recent handle times of several items in one round trip."""
        async with self.r.pipeline(transaction=False) as pipe:
            for code in item_codes:
                pipe.lrange(keys.handle_times(code), 0, -1)
            rows = await pipe.execute()
        return {code: [float(x) for x in row] for code, row in zip(item_codes, rows, strict=True)}

    # --- terminals -------------------------------------------------------------------

    async def mark_disconnected(self, terminal_id: str, deadline: float) -> None:
        await self.r.zadd(keys.disconnected_terminals(), {terminal_id: deadline})

    async def mark_connected(self, terminal_id: str) -> None:
        await self.r.zrem(keys.disconnected_terminals(), terminal_id)

    async def due_disconnected(self, now: float, limit: int = 100) -> list[str]:
        return strs(await self.r.zrangebyscore(
            keys.disconnected_terminals(), "-inf", now, 0, limit))

    async def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in str_map(await self.r.hgetall(keys.counters())).items()}

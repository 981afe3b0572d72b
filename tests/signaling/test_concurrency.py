"""Seeded chaos across two signaling nodes on one Redis: nobody paired twice, nobody forgotten.

Terminals join, leave, drop and come back; clerks go ready and not ready, accept, reject,
let offers time out, hang up and lose their connection, each on a random node. Afterwards
every message the peers saw and the Redis state are checked, and the applicants still
waiting must each reach a clerk once clerks just take every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, ClientWebSocketResponse, CookieJar, WSMsgType
from aiohttp.test_utils import TestServer
from sqlalchemy.dialects.postgresql import insert

from core import keys, records
from core.credentials import hash_password, hash_token
from core.settings import Settings
from core.states import CallState, TicketState
from signaling.app import create_app
from signaling.queue_records import CallRecord, Ticket
from signaling.queue_store import QueueStore
from testkit.demo_catalogue import DEMO_ITEMS
from tests.signaling.peers import fast

SEED = 20261125
TERMINALS = 12
CLERKS = 6
CHAOS_S = 10.0  # long enough for > 50 offers now that absent terminals get none
PASSWORD = "conc-pass-1"
PREFIX = "conc"
ITEMS = [it.code for it in DEMO_ITEMS if any("420115".startswith(p) for p in it.clerk_regions)][:3]

# Read everything the queue keeps in one atomic step, so invariants hold within one snapshot.
_SNAPSHOT = """
local out = {}
for _, pattern in ipairs(ARGV) do
  local found = {}
  for _, k in ipairs(redis.call('KEYS', pattern)) do
    local t = redis.call('TYPE', k)['ok']
    if t == 'hash' then
      local h = redis.call('HGETALL', k)
      local m = {}
      for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
      found[k] = m
    elseif t == 'zset' then found[k] = {members = redis.call('ZRANGE', k, 0, -1)}
    elseif t == 'string' then found[k] = {value = redis.call('GET', k)}
    end
  end
  out[pattern] = found
end
return cjson.encode(out)
"""


@dataclass
class Snapshot:
    clerks: dict[str, dict[str, str]]
    tickets: dict[str, dict[str, str]]
    offers: dict[str, dict[str, str]]
    calls: dict[str, dict[str, str]]
    queues: dict[str, list[str]]
    terminal_ticket: dict[str, str]
    ready: list[str]


async def snapshot(redis: aioredis.Redis) -> Snapshot:
    pats = [keys.clerk("*"), keys.ticket("*"), keys.offer("*"), keys.call("*"),
            keys.waiting("*"), keys.terminal_ticket("*"), keys.clerks_ready()]
    raw: dict[str, Any] = json.loads(await redis.eval(_SNAPSHOT, 0, *pats))

    def hashes(pattern: str, prefix: str) -> dict[str, dict[str, str]]:
        found = raw[pattern] or {}
        return {k[len(prefix):]: v for k, v in found.items()
                if "members" not in v and "value" not in v}

    queues: dict[str, list[str]] = {}
    for k, v in (raw[keys.waiting("*")] or {}).items():
        if "members" in v and k != keys.waiting_items():
            queues[k[len(keys.waiting("")):]] = list(v["members"] or [])
    tt: dict[str, str] = {}
    head, tail = keys.terminal_ticket("\0").split("\0")
    for k, v in (raw[keys.terminal_ticket("*")] or {}).items():
        if "value" in v:
            tt[k[len(head):len(k) - len(tail)]] = v["value"]
    ready_raw = (raw[keys.clerks_ready()] or {}).get(keys.clerks_ready(), {})
    return Snapshot(
        clerks=hashes(keys.clerk("*"), keys.clerk("")),
        tickets=hashes(keys.ticket("*"), keys.ticket("")),
        offers=hashes(keys.offer("*"), keys.offer("")),
        calls=hashes(keys.call("*"), keys.call("")),
        queues=queues, terminal_ticket=tt, ready=list(ready_raw.get("members") or []),
    )


def check_state(s: Snapshot, settled: bool) -> list[str]:
    """Pairing invariants of one atomic snapshot (`settled`: no change is half-way)."""
    bad: list[str] = []
    clerks = {c: h for c, h in s.clerks.items() if c.startswith(PREFIX)}
    per_clerk: dict[str, list[str]] = defaultdict(list)
    per_ticket: dict[str, list[str]] = defaultdict(list)
    for oid, o in s.offers.items():
        per_clerk[o["clerk"]].append(oid)
        per_ticket[o["ticket_id"]].append(oid)
        c = s.clerks.get(o["clerk"], {})
        if c.get("offer_id") != oid or c.get("state") != "offered":
            bad.append(f"offer {oid} not held by its clerk: {c}")
        t = s.tickets.get(o["ticket_id"])
        # A leaving applicant's ticket goes first and its offer right after (two steps).
        if t is None and settled:
            bad.append(f"offer {oid} for a ticket that is gone")
        if t is not None and (t.get("offer_id") != oid or t.get("state") != "offered"):
            bad.append(f"offer {oid} not held by its ticket: {t}")
    bad += [f"clerk {c} holds offers {o}" for c, o in per_clerk.items() if len(o) > 1]
    bad += [f"ticket {t} holds offers {o}" for t, o in per_ticket.items() if len(o) > 1]
    active = {cid: c for cid, c in s.calls.items() if c.get("state") == "active"}
    calls_of_clerk: dict[str, list[str]] = defaultdict(list)
    calls_of_ticket: dict[str, list[str]] = defaultdict(list)
    for cid, c in active.items():
        calls_of_clerk[c["clerk"]].append(cid)
        calls_of_ticket[c["ticket_id"]].append(cid)
        if s.clerks.get(c["clerk"], {}).get("call_id") != cid:
            bad.append(f"call {cid} not held by its clerk")
        t = s.tickets.get(c["ticket_id"], {})
        if t.get("call_id") != cid or t.get("state") != "in_call" or "terminal_id" not in t:
            bad.append(f"call {cid} not held by a whole ticket: {t}")
        if s.terminal_ticket.get(c["terminal_id"]) != c["ticket_id"]:
            bad.append(f"call {cid}: terminal {c['terminal_id']} points elsewhere")
    bad += [f"clerk {c} in calls {x}" for c, x in calls_of_clerk.items() if len(x) > 1]
    # Ended calls stay for a day: nobody's calls may overlap in time.
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for cid, c in s.calls.items():
        span = (float(c["started_at"]), float(c.get("ended_at") or "inf"), cid)
        spans[c["clerk"]].append(span)
        spans[c["terminal_id"]].append(span)
    for who, xs in spans.items():
        xs.sort()
        bad += [f"{who} in overlapping calls {a[2]} and {b[2]}"
                for a, b in itertools.pairwise(xs) if b[0] < a[1]]
    bad += [f"ticket {t} in calls {x}" for t, x in calls_of_ticket.items() if len(x) > 1]
    queued = {tid: item for item, ids in s.queues.items() for tid in ids}
    for tid, t in s.tickets.items():
        if t.get("state") in ("waiting", "offered"):
            if queued.get(tid) != t.get("item_code"):
                bad.append(f"waiting ticket {tid} is not in its queue ({t.get('item_code')})")
            if s.terminal_ticket.get(t["terminal_id"]) != tid:
                bad.append(f"waiting ticket {tid}: its terminal points elsewhere")
        elif tid in queued:
            bad.append(f"ticket {tid} in state {t.get('state')} still queued")
    bad += [f"queued ticket {tid} has no record" for tid in queued if tid not in s.tickets]
    for u, c in clerks.items():
        is_free = c.get("status") == "ready" and c.get("state") == "idle"
        if is_free != (u in s.ready):
            bad.append(f"clerk {u} free={is_free} but in ready set={u in s.ready}")
        if c.get("state") == "offered" and c.get("offer_id") not in s.offers:
            bad.append(f"clerk {u} offered without an offer record")
        if c.get("state") == "in_call" and c.get("call_id") not in active:
            bad.append(f"clerk {u} in call without an active call")
    return bad


@dataclass
class Client:
    """One websocket of a terminal or clerk; a reader task keeps every message it gets."""

    who: str
    session: ClientSession
    ws: ClientWebSocketResponse
    log: list[dict[str, Any]]  # shared by all connections of the same person, in order
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type == WSMsgType.TEXT:
                msg: dict[str, Any] = json.loads(frame.data)
                self.log.append(msg)
                self.inbox.put_nowait(msg)

    async def send(self, **msg: Any) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(json.dumps(msg))

    async def next(self, wait: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.inbox.get(), wait)
        except TimeoutError:
            return None

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait({self.reader}, timeout=2)
        await self.session.close()


async def open_client(server: TestServer, who: str, login: tuple[str, dict[str, str]],
                      log: list[dict[str, Any]]) -> Client:
    session = ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))
    resp = await session.post(login[0], json=login[1])
    assert resp.status == 200, await resp.text()
    ws = await session.ws_connect("/ws")
    client = Client(who, session, ws, log)
    client.reader = asyncio.create_task(client._read())
    return client


@dataclass
class World:
    nodes: list[TestServer]
    rng: random.Random
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    serve: asyncio.Event = field(default_factory=asyncio.Event)  # clerks take every call
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    clients: dict[str, Client | None] = field(default_factory=dict)


def term_login(i: int) -> tuple[str, dict[str, str]]:
    return "/api/terminal/session", {"token": f"{PREFIX}-token-{SEED}-{i:02d}"}


def clerk_login(i: int) -> tuple[str, dict[str, str]]:
    return "/api/login", {"username": f"{PREFIX}-clerk-{i}", "password": PASSWORD}


async def terminal_actor(w: World, i: int) -> None:
    who = f"{PREFIX}-term-{i:02d}"
    rng = random.Random(w.rng.random())
    client: Client | None = None
    while not w.stop.is_set():
        if client is None:
            await asyncio.sleep(rng.uniform(0, 0.3))
            client = await open_client(rng.choice(w.nodes), who, term_login(i), w.logs[who])
            w.clients[who] = client
            continue
        roll = rng.random()
        if roll < 0.35:
            await client.send(type="join_queue", item_code=rng.choice(ITEMS),
                              priority=rng.random() < 0.2)
        elif roll < 0.45:
            await client.send(type="leave_queue")
        elif roll < 0.55:
            # Gone for a moment (kept its place) or for good (abandoned after the grace).
            await client.close()
            w.clients[who] = client = None
            await asyncio.sleep(rng.choice([0.1, 0.4, 1.6]))
            continue
        await client.next(rng.uniform(0.1, 0.5))
    w.clients[who] = client


async def clerk_actor(w: World, i: int) -> None:
    who = f"{PREFIX}-clerk-{i}"
    rng = random.Random(w.rng.random())
    client: Client | None = None
    hang_up_at: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while not (w.stop.is_set() and not w.serve.is_set()):
        serving = w.serve.is_set()
        if client is None:
            await asyncio.sleep(rng.uniform(0, 0.3))
            client = await open_client(rng.choice(w.nodes), who, clerk_login(i), w.logs[who])
            w.clients[who] = client
            await client.send(type="set_status", status="ready")
            continue
        for cid, at in list(hang_up_at.items()):
            if loop.time() >= at:
                await client.send(type="end_call", call_id=cid)
                del hang_up_at[cid]
        msg = await client.next(0.1)
        if msg is None:
            if not serving and rng.random() < 0.02:
                await client.close()
                w.clients[who] = client = None
            elif not serving and rng.random() < 0.03:
                await client.send(type="set_status", status="not_ready", reason="休息")
            continue
        kind = msg["type"]
        if kind == "offer":
            roll = 0.0 if serving else rng.random()
            await asyncio.sleep(rng.uniform(0, 0.15))
            if roll < 0.6:
                await client.send(type="accept_offer", offer_id=msg["offer_id"])
            elif roll < 0.75:
                await client.send(type="reject_offer", offer_id=msg["offer_id"])
            elif roll < 0.8:
                await client.send(type="set_status", status="not_ready", reason="离开")
            elif roll < 0.85:
                await client.close()
                w.clients[who] = client = None
            # Otherwise the offer is left to time out.
        elif kind == "call_assigned":
            hang_up_at[msg["call_id"]] = loop.time() + rng.uniform(0.05, 0.1 if serving else 0.6)
        elif kind == "clerk_state":
            if msg["state"] == "wrap_up" and (serving or rng.random() < 0.5):
                await client.send(type="wrapup_done")
            if msg["status"] == "not_ready":
                await asyncio.sleep(0 if serving else rng.uniform(0.1, 0.6))
                await client.send(type="set_status", status="ready")
    w.clients[who] = client


async def add_people(settings: Settings) -> None:
    engine = records.make_engine(settings.database_url)
    pw = hash_password(PASSWORD)
    try:
        async with engine.begin() as conn:
            for i in range(CLERKS):
                row: dict[str, Any] = {
                    "username": f"{PREFIX}-clerk-{i}", "display_name": f"并发坐席{i}",
                    "role": "clerk", "password_hash": pw, "region_code": "420115",
                    "skills": ITEMS, "jurisdictions": ["42"], "review_groups": []}
                await conn.execute(insert(records.accounts).values(row).on_conflict_do_update(
                    index_elements=["username"], set_=row))
            for i in range(TERMINALS):
                row = {"terminal_id": f"{PREFIX}-term-{i:02d}", "name": f"并发终端{i}",
                       "village": "江夏区测试村", "region_code": "420115",
                       "token_hash": hash_token(term_login(i)[1]["token"])}
                await conn.execute(insert(records.terminals).values(row).on_conflict_do_update(
                    index_elements=["terminal_id"], set_=row))
    finally:
        await engine.dispose()


@pytest.fixture
async def nodes(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[list[TestServer]]:
    await add_people(settings)
    quick = fast(settings, offer_timeout_s=0.8, wrapup_s=0.4)
    servers = [TestServer(create_app(fast(quick, node_id=f"node-{n}"))) for n in "ab"]
    for s in servers:
        await s.start_server()
    yield servers
    for s in servers:
        await s.close()


def check_messages(logs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What the people saw: one call per ticket, one clerk per offer, no overlapping calls."""
    bad: list[str] = []
    call_parties: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    offer_clerk: dict[str, set[str]] = defaultdict(set)
    offer_ticket: dict[str, str] = {}
    for who, log in logs.items():
        current: str | None = None
        for m in log:
            if m["type"] == "error" and m["code"] == "internal":
                bad.append(f"{who} saw an internal error: {m}")
            if m["type"] == "hello":
                current = None  # a call_ended published while away is not replayed
            elif m["type"] == "call_assigned":
                call_parties[m["call_id"]].add(
                    (m["ticket_id"], m["terminal_id"], m["clerk_username"]))
                if who not in (m["terminal_id"], m["clerk_username"]):
                    bad.append(f"{who} told of someone else's call {m['call_id']}")
                if current is not None and current != m["call_id"]:
                    bad.append(f"{who} in call {m['call_id']} while {current} not ended")
                current = m["call_id"]
            elif m["type"] == "call_ended" and m["call_id"] == current:
                current = None
            elif m["type"] == "offer":
                offer_clerk[m["offer_id"]].add(who)
                if offer_ticket.setdefault(m["offer_id"], m["ticket_id"]) != m["ticket_id"]:
                    bad.append(f"offer {m['offer_id']} names two tickets")
    bad += [f"call {c} has parties {p}" for c, p in call_parties.items() if len(p) != 1]
    calls_of_ticket: dict[str, set[str]] = defaultdict(set)
    for c, parties in call_parties.items():
        for ticket_id, _, _ in parties:
            calls_of_ticket[ticket_id].add(c)
    bad += [f"ticket {t} in calls {c}" for t, c in calls_of_ticket.items() if len(c) > 1]
    bad += [f"offer {o} went to {c}" for o, c in offer_clerk.items() if len(c) > 1]
    return bad


async def test_chaos_across_two_nodes_pairs_once_and_forgets_nobody(
    nodes: list[TestServer], redis: aioredis.Redis
) -> None:
    w = World(nodes, random.Random(SEED))
    actors = [asyncio.create_task(terminal_actor(w, i)) for i in range(TERMINALS)]
    clerks = [asyncio.create_task(clerk_actor(w, i)) for i in range(CLERKS)]
    violations: list[str] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + CHAOS_S
    while loop.time() < end:
        violations += check_state(await snapshot(redis), settled=False)
        await asyncio.sleep(0.05)
    # Chaos over: terminals keep still, clerks take every call and hang up quickly.
    w.serve.set()
    w.stop.set()
    await asyncio.gather(*actors)
    await asyncio.sleep(1.5)  # grace and wrap-up timers of the last moves run out
    violations += check_state(await snapshot(redis), settled=True)

    # Every applicant still waiting with a live terminal reaches a clerk.
    s = await snapshot(redis)
    waiting = {t["terminal_id"]: tid for tid, t in s.tickets.items()
               if t.get("state") in ("waiting", "offered")
               and w.clients.get(t["terminal_id"]) is not None}
    served: set[str] = set()
    deadline = loop.time() + 15
    while loop.time() < deadline and served != set(waiting):
        for term, tid in waiting.items():
            if any(m["type"] == "call_assigned" and m["ticket_id"] == tid
                   for m in w.logs[term]):
                served.add(term)
        await asyncio.sleep(0.1)
    forgotten = sorted(set(waiting) - served)
    await asyncio.sleep(0.5)
    w.serve.clear()
    await asyncio.gather(*clerks)
    final = await snapshot(redis)
    violations += check_state(final, settled=True)
    violations += check_messages(w.logs)
    for c in w.clients.values():
        if c is not None:
            await c.close()

    calls = sum(1 for log in w.logs.values() for m in log if m["type"] == "call_assigned")
    offers = sum(1 for log in w.logs.values() for m in log if m["type"] == "offer")
    assert offers > 50 and calls > 20, (offers, calls)  # the run really exercised pairing
    assert forgotten == [], f"waiting applicants never offered: {forgotten}"
    assert violations == [], "\n".join(dict.fromkeys(violations))


async def test_accept_after_the_applicant_left_makes_no_call(redis: aioredis.Redis) -> None:
    """The step a node takes between dropping a ticket and withdrawing its offer is a window
    in which another node may see the clerk accept; that accept must not start a call."""
    store = QueueStore(redis)
    now = 1000.0
    ticket = Ticket(ticket_id="tk-race", terminal_id="T-race", terminal_name="终端",
                    village="村", item_code=ITEMS[0], handling_region="420115", priority=False,
                    enqueued_at=now, state=TicketState.WAITING, offer_id="", call_id="")
    assert await store.join(ticket) == "tk-race"
    await store.set_presence(keys.terminal_presence("T-race"), "conn-race", 60)
    await store.upsert_clerk("race-clerk", "坐席", ITEMS, ["42"], "420115", now)
    await store.set_status("race-clerk", "ready", "", now)
    assert await store.reserve(ticket, "race-clerk", "of-race", now, now + 20) == 1
    offer = await store.offer("of-race")
    assert offer is not None
    assert await store.remove_ticket(ticket, "left") == "of-race"
    call = CallRecord(call_id="call-race", ticket_id=ticket.ticket_id, item_code=ITEMS[0],
                      terminal_id="T-race", terminal_name="终端", clerk="race-clerk",
                      clerk_name="坐席", state=CallState.ACTIVE, started_at=now + 1)
    assert await store.accept(offer, ticket, call, now + 1) == 0
    assert await store.call("call-race") is None
    assert await store.ticket("tk-race") is None
